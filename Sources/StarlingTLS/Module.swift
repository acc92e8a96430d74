// StarlingTLS: module placeholder; real content lands with its issue.
enum StarlingTLSModule {}
