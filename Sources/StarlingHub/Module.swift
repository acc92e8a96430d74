// StarlingHub: module placeholder; real content lands with its issue.
enum StarlingHubModule {}
