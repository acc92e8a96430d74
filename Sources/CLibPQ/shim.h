#ifndef STARLING_CLIBPQ_SHIM_H
#define STARLING_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <string.h>

/* PG_DIAG_* are character-literal macros, which Swift does not import reliably: expose them as functions. */
static inline int starling_pq_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int starling_pq_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
static inline int starling_pq_diag_message_detail(void) { return PG_DIAG_MESSAGE_DETAIL; }
static inline int starling_pq_diag_message_hint(void) { return PG_DIAG_MESSAGE_HINT; }
static inline int starling_pq_diag_constraint_name(void) { return PG_DIAG_CONSTRAINT_NAME; }

/* The notice receiver: drops notices (libpq's default prints them to stderr), but records in *arg (an int
   owned by the Swift connection object, which outlives the PGconn) that a FATAL or PANIC arrived. libpq turns an
   ErrorResponse received while the connection is idle -- the server's "terminating connection" before it closes
   the socket -- into a notice, so this flag is how an idle connection learns that its backend is gone. */
static inline void starling_pq_notice_receiver(void *arg, const PGresult *res) {
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (arg != NULL && severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) {
        *(int *)arg = 1;
    }
}
static inline void starling_pq_watch_notices(PGconn *conn, int *fatal_seen) {
    PQsetNoticeReceiver(conn, starling_pq_notice_receiver, fatal_seen);
}

/* Names the calling thread (pthread_setname_np needs _GNU_SOURCE, which this system module cannot set before
   other modules include <pthread.h>; so it is declared here). Linux keeps at most 15 bytes of the name. */
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline int starling_pq_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
#endif
