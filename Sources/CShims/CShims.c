#include "CShims.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int starling_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

int starling_errno(void) { return errno; }

void starling_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

/* Written by the thread that installs the route, read by the signal handler on whichever thread takes the
   signal: a lock-free atomic (async-signal-safe), so the two never race (ThreadSanitizer saw the volatile int). */
static _Atomic int starling_signal_fd = -1;

static void starling_signal_handler(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    int fd = atomic_load(&starling_signal_fd);
    if (fd >= 0) {
        ssize_t ignored = write(fd, &byte, 1);
        (void)ignored;
    }
    errno = saved;
}

int starling_route_signal_to_fd(int signo, int fd) {
    atomic_store(&starling_signal_fd, fd);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = starling_signal_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(signo, &action, NULL);
}

int starling_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int starling_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int starling_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

int starling_open_anonymous_file(const char *dir) {
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
    char path[4096];
    int length = snprintf(path, sizeof path, "%s/starling-spill-XXXXXX", dir);
    if (length < 0 || (size_t)length >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    return fd;
}
