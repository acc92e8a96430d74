/*
 * starling_pgoutput: PostgreSQL's pgoutput, minus the rows of the transactions a Starling agent applied
 * (README "WAL capture", "The decoding plugin").
 *
 * A region's WAL holds the application's transactions and the agent's applies of every other region's changes:
 * at 8 regions, seven rows in eight are the agent's own. pgoutput decodes and sends every one of them (each column
 * through its type's output function) only for the agent to drop it. An agent transaction that lists the keys it
 * writes in a transactional logical message with prefix "starling.written" (before its rows) needs none of its
 * rows: this plugin passes everything to pgoutput except the row changes that follow such a message in a
 * transaction that carries a replication origin (the agent's session has one; an application's does not, so an
 * application cannot hide its own rows this way). Begin, origin, messages and commit go through unchanged, so the
 * stream is pgoutput's protocol and the agent reads it with the same decoder.
 *
 * Decoding without `streaming` replays one transaction at a time, from its begin to its commit, so one marked
 * transaction id serves: set by the message, cleared at each begin, and compared with each change's transaction (so
 * no other transaction's rows are ever skipped, whatever the order of callbacks: a prepared transaction decoded
 * with `two_phase` starts without begin_cb). With `streaming` on, pgoutput's stream callbacks run instead of the
 * ones wrapped here and every row is sent, as by pgoutput.
 *
 * No memory is allocated here. Build and install: ops/decoder/install (PGXS). PostgreSQL 15.19 and later load an
 * output plugin for a replication connection only when `output_plugin_libraries` lists it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/output_plugin.h"

PG_MODULE_MAGIC;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

/* The prefix of the message listing an agent transaction's keys (StarlingAgent's WrittenKeys.prefix). */
#define STARLING_WRITTEN_PREFIX "starling.written"

static LogicalDecodeBeginCB pgoutput_begin;
static LogicalDecodeChangeCB pgoutput_change;
static LogicalDecodeMessageCB pgoutput_message;

/* The transaction whose rows are skipped from here on (the one being replayed), or InvalidTransactionId. */
static TransactionId skip_xid = InvalidTransactionId;

static void
starling_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	skip_xid = InvalidTransactionId;
	pgoutput_begin(ctx, txn);
}

static void
starling_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr message_lsn,
				 bool transactional, const char *prefix, Size sz, const char *message)
{
	if (transactional && txn != NULL && txn->origin_id != InvalidRepOriginId &&
		strcmp(prefix, STARLING_WRITTEN_PREFIX) == 0)
		skip_xid = txn->xid;
	pgoutput_message(ctx, txn, message_lsn, transactional, prefix, sz, message);
}

static void
starling_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation relation,
				ReorderBufferChange *change)
{
	if (TransactionIdIsValid(skip_xid) && txn->xid == skip_xid)
		return;
	pgoutput_change(ctx, txn, relation, change);
}

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	LogicalOutputPluginInit pgoutput_init = (LogicalOutputPluginInit)
		load_external_function("pgoutput", "_PG_output_plugin_init", false, NULL);

	pgoutput_init(cb);
	pgoutput_begin = cb->begin_cb;
	pgoutput_change = cb->change_cb;
	pgoutput_message = cb->message_cb;
	cb->begin_cb = starling_begin;
	cb->change_cb = starling_change;
	cb->message_cb = starling_message;
}
