// StarlingIO: module placeholder; real content lands with its issue.
enum StarlingIOModule {}
