// StarlingPostgres: module placeholder; real content lands with its issue.
enum StarlingPostgresModule {}
