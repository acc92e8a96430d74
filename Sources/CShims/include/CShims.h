#ifndef STARLING_CSHIMS_H
#define STARLING_CSHIMS_H
/* Linux system calls and macros that Swift's Glibc module does not export. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>

int starling_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int starling_errno(void);
/* Sets the calling thread's name (at most 15 characters) for ps/top. */
void starling_set_thread_name(const char *name);

/* Routes `signo` to a pipe: an async-signal-safe handler writes the signal number (one byte) to `fd`.
   Works whichever thread the kernel picks to deliver the signal on. Returns 0 or -1 (errno set). */
int starling_route_signal_to_fd(int signo, int fd);

/* pipe2(fds, O_CLOEXEC): both ends close on exec, atomically (no other thread's spawn inherits them). */
int starling_pipe_cloexec(int fds[2]);

/* posix_spawn_file_actions_addchdir_np: the child starts in `path`. */
int starling_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/* posix_spawn_file_actions_addclosefrom_np: the child starts with every descriptor from `lowfd` up closed, so it
   inherits none that another thread of this process opened without O_CLOEXEC (glibc 2.34+). */
int starling_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/* An unnamed file in directory `dir`, open for reading and writing (O_CLOEXEC): O_TMPFILE, or where the file
   system lacks it mkostemp then unlink. Its space is freed when its last descriptor closes, also when the process
   dies. Returns the descriptor (the caller owns it and closes it) or -1 with errno set. */
int starling_open_anonymous_file(const char *dir);
#endif
