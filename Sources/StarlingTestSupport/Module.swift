// StarlingTestSupport: module placeholder; real content lands with its issue.
enum StarlingTestSupportModule {}
