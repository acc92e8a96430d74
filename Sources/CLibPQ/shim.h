#ifndef STARLING_CLIBPQ_SHIM_H
#define STARLING_CLIBPQ_SHIM_H
#include <libpq-fe.h>

/* PG_DIAG_* are character-literal macros, which Swift does not import reliably: expose them as functions. */
static inline int starling_pq_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int starling_pq_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
static inline int starling_pq_diag_message_detail(void) { return PG_DIAG_MESSAGE_DETAIL; }
static inline int starling_pq_diag_message_hint(void) { return PG_DIAG_MESSAGE_HINT; }
static inline int starling_pq_diag_constraint_name(void) { return PG_DIAG_CONSTRAINT_NAME; }

/* A notice receiver that drops notices: libpq's default prints them to stderr. */
static inline void starling_pq_ignore_notice(void *arg, const PGresult *res) { (void)arg; (void)res; }
static inline void starling_pq_silence_notices(PGconn *conn) {
    PQsetNoticeReceiver(conn, starling_pq_ignore_notice, NULL);
}

/* Names the calling thread (pthread_setname_np needs _GNU_SOURCE, which this system module cannot set before
   other modules include <pthread.h>; so it is declared here). Linux keeps at most 15 bytes of the name. */
#include <pthread.h>
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline int starling_pq_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
#endif
