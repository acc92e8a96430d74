// StarlingHTTP2: module placeholder; real content lands with its issue.
enum StarlingHTTP2Module {}
