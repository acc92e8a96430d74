#include "CShims.h"

int starling_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

int starling_errno(void) { return errno; }

void starling_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }
