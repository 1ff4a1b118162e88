/* store.c — the Redis store of dronepipe-delivery over hiredis (see store.h for the key layout
 * and the apply rules; keys.h builds every key name). Owns: the connection pool, the apply
 * script's SHA1, the subscription thread and its connection, the probe (readiness) and its ping
 * thread. Every call records its outcome in the probe. */
#include <errno.h>
#include <hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonw.h"
#include "keys.h"
#include "log.h"
#include "mem.h"
#include "probe.h"
#include "store.h"
#include "timefmt.h"

/* Applies a batch of records in order, one script call for all. ARGV[1] is the retention in ms,
 * ARGV[2] the history cap; then per op, KEYS and ARGV in turn:
 *   lifecycle: KEYS delivery hash, history list, telemetry hash, summary set;
 *              ARGV 'L', version, eventId, stage, event JSON, history entry JSON, deliveryId,
 *              channel, time
 *   telemetry: KEYS delivery hash, history list, telemetry hash;
 *              ARGV 'T', channel, seq, time, updatedAt, latitude, longitude, altitude, speedMps,
 *              phase, droneId, eventId
 * Returns one integer per op (1 applied, 0 not newer, 2 older than the retention). An op whose
 * command fails gets its error in its place and the script stops there: no later op of the
 * batch takes effect. When the call ends, each changed delivery's keys get one expiry (the
 * latest update's time, at most now, plus the retention; never earlier than an expiry they
 * have) and its channel one PUBLISH with its last change: a subscriber reads the delivery's
 * state when told, so the messages in between told it nothing (in a replay, where a batch holds
 * several versions of a delivery, 400k PUBLISHes became 85k, and the subscription thread wakes
 * that much less). */
static const char apply_lua[] =
    "local retention, history_max = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local clock = redis.call('TIME')\n"
    "local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)\n"
    "local changed, order = {}, {}\n"
    "local function note(channel, what, k, time)\n"
    "  local c = changed[channel]\n"
    "  if not c then\n"
    "    c = {keys = {KEYS[k], KEYS[k+1], KEYS[k+2]}, time = time}\n"
    "    changed[channel] = c\n"
    "    order[#order + 1] = channel\n"
    "  end\n"
    "  c.what = what\n"
    "  if time > c.time then c.time = time end\n"
    "end\n"
    /* keys: the delivery hash, its history (written with it, so sharing its expiry) and the
     * telemetry hash; or one summary set. PEXPIRETIME: -2 no key, -1 no expiry. */
    "local function expire(keys, time)\n"
    "  local at = math.min(time, now) + retention\n"
    "  local t1 = redis.call('PEXPIRETIME', keys[1])\n"
    "  local t3 = keys[3] and redis.call('PEXPIRETIME', keys[3]) or -2\n"
    "  if t1 > at then at = t1 end\n"
    "  if t3 > at then at = t3 end\n"
    "  local text = string.format('%.0f', at)\n"
    "  if t1 ~= -2 and t1 ~= at then\n"
    "    redis.call('PEXPIREAT', keys[1], text)\n"
    "    if keys[2] then redis.call('PEXPIREAT', keys[2], text) end\n"
    "  end\n"
    "  if t3 ~= -2 and t3 ~= at then redis.call('PEXPIREAT', keys[3], text) end\n"
    "end\n"
    "local function expired(time) return time + retention <= now end\n"
    "local function lifecycle(k, a)\n"
    "  local time = tonumber(ARGV[a+7])\n"
    "  if expired(time) then return 2 end\n"
    "  local cur = tonumber(redis.call('HGET', KEYS[k], 'version') or '0')\n"
    "  if tonumber(ARGV[a]) <= cur then return 0 end\n"
    "  redis.call('HSET', KEYS[k], 'version', ARGV[a], 'eventId', ARGV[a+1], 'stage', ARGV[a+2],"
    " 'event', ARGV[a+3])\n"
    "  if redis.call('RPUSH', KEYS[k+1], ARGV[a+4]) > history_max then\n"
    "    redis.call('LTRIM', KEYS[k+1], -history_max, -1)\n"
    "  end\n"
    "  if ARGV[a+2] == 'Created' then\n"
    "    redis.call('SADD', KEYS[k+3], ARGV[a+5])\n"
    "    expire({KEYS[k+3]}, time)\n"
    "  end\n"
    "  note(ARGV[a+6], 'lifecycle ' .. ARGV[a], k, time)\n"
    "  return 1\n"
    "end\n"
    "local function telemetry(k, a)\n"
    "  local time = tonumber(ARGV[a+2])\n"
    "  if expired(time) then return 2 end\n"
    "  local cur = redis.call('HMGET', KEYS[k+2], 'seq', 'time')\n"
    "  if cur[1] and (tonumber(ARGV[a+1]) <= tonumber(cur[1])"
    " or time < tonumber(cur[2])) then return 0 end\n"
    "  redis.call('HSET', KEYS[k+2], 'seq', ARGV[a+1], 'time', ARGV[a+2], 'updatedAt', ARGV[a+3],"
    " 'latitude', ARGV[a+4], 'longitude', ARGV[a+5], 'altitude', ARGV[a+6],"
    " 'speedMps', ARGV[a+7], 'phase', ARGV[a+8], 'droneId', ARGV[a+9], 'eventId', ARGV[a+10])\n"
    "  note(ARGV[a], 'telemetry ' .. ARGV[a+1], k, time)\n"
    "  return 1\n"
    "end\n"
    "local function finish()\n"
    "  for _, channel in ipairs(order) do\n"
    "    expire(changed[channel].keys, changed[channel].time)\n"
    "    redis.call('PUBLISH', channel, changed[channel].what)\n"
    "  end\n"
    "end\n"
    "local out, k, a = {}, 1, 3\n"
    "while a <= #ARGV do\n"
    "  local ok, r\n"
    "  if ARGV[a] == 'L' then ok, r = pcall(lifecycle, k, a + 1); k = k + 4; a = a + 9\n"
    "  else ok, r = pcall(telemetry, k, a + 1); k = k + 3; a = a + 12 end\n"
    "  if not ok then\n"
    "    out[#out + 1] = redis.error_reply(type(r) == 'table' and tostring(r.err) or tostring(r))\n"
    "    finish()\n"
    "    return out\n"
    "  end\n"
    "  out[#out + 1] = r\n"
    "end\n"
    "finish()\n"
    "return out\n";

struct dlv_store {
	char *host, *user, *password;
	int port, db;
	struct timeval timeout;
	int64_t retention_ms;
	long history_max;
	pl_probe_t *probe; /* what the calls recorded, for readiness */
	/* pool: idle connections, count of open ones (idle + in use), bound */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	redisContext **idle;
	unsigned nidle, open, max;
	char sha_apply[48]; /* "" until first loaded (under lock) */
	/* subscription */
	pthread_t sub_thread;
	bool sub_running;
	atomic_bool stopping;
	store_change_fn sub_fn;
	void *sub_arg;
};

/* ---- URL and keys ------------------------------------------------------------------------- */

static bool parse_url(dlv_store_t *st, const char *url, char *errstr, size_t errstr_size)
{
	const char *p = url;
	if (!p || strncmp(p, "redis://", 8) != 0) {
		snprintf(errstr, errstr_size, "DP_REDIS_URL must start with redis://");
		return false;
	}
	p += 8;
	const char *at = strrchr(p, '@');
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			if (colon > p)
				st->user = pl_strndup(p, (size_t)(colon - p));
			st->password = pl_strndup(colon + 1, (size_t)(at - colon - 1));
		} else {
			st->password = pl_strndup(p, (size_t)(at - p));
		}
		p = at + 1;
	}
	size_t hostlen = strcspn(p, ":/");
	if (hostlen == 0) {
		snprintf(errstr, errstr_size, "DP_REDIS_URL has no host");
		return false;
	}
	st->host = pl_strndup(p, hostlen);
	p += hostlen;
	st->port = 6379;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
			snprintf(errstr, errstr_size, "DP_REDIS_URL has a bad port");
			return false;
		}
		st->port = (int)port;
		p = end;
	}
	if (*p == '/' && p[1]) {
		char *end;
		long db = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end || db < 0 || db > 1000000) {
			snprintf(errstr, errstr_size, "DP_REDIS_URL has a bad database number");
			return false;
		}
		st->db = (int)db;
	}
	return true;
}

/* ---- connections -------------------------------------------------------------------------- */

static bool transient_reply(const char *msg)
{
	static const char *const codes[] = {"LOADING",    "BUSY",     "OOM",         "READONLY",
	                                    "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(msg, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}

/* A broken link in words: hiredis 0.14 reports its socket timeout as the read's EAGAIN. */
static void link_error(const redisContext *c, char *errstr, size_t errstr_size)
{
	if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
		snprintf(errstr, errstr_size,
		         "redis: no answer within DP_REDIS_TIMEOUT_MS (command timed out)");
	else
		snprintf(errstr, errstr_size, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
}

/* Runs a command; on failure fills errstr and returns the error class. *reply on PL_OK. */
static pl_err_t run(redisContext *c, redisReply **reply, char *errstr, size_t errstr_size, int argc,
                    const char **argv, const size_t *argvlen)
{
	*reply = redisCommandArgv(c, argc, argv, argvlen);
	if (!*reply) {
		link_error(c, errstr, errstr_size);
		return PL_ERR_TRANSIENT;
	}
	if ((*reply)->type == REDIS_REPLY_ERROR) {
		snprintf(errstr, errstr_size, "redis: %s", (*reply)->str);
		pl_err_t e = transient_reply((*reply)->str) ? PL_ERR_TRANSIENT : PL_ERR_REJECTED;
		freeReplyObject(*reply);
		*reply = NULL;
		return e;
	}
	return PL_OK;
}

static pl_err_t run_simple(redisContext *c, char *errstr, size_t errstr_size, int argc,
                           const char **argv)
{
	redisReply *r;
	pl_err_t e = run(c, &r, errstr, errstr_size, argc, argv, NULL);
	if (e == PL_OK)
		freeReplyObject(r);
	return e;
}

static pl_err_t load_scripts(dlv_store_t *st, redisContext *c, char *errstr, size_t errstr_size)
{
	const char *argv[] = {"SCRIPT", "LOAD", apply_lua};
	redisReply *r;
	pl_err_t e = run(c, &r, errstr, errstr_size, 3, argv, NULL);
	if (e != PL_OK)
		return e;
	if (r->type == REDIS_REPLY_STRING) {
		pthread_mutex_lock(&st->lock);
		snprintf(st->sha_apply, sizeof(st->sha_apply), "%s", r->str);
		pthread_mutex_unlock(&st->lock);
	}
	freeReplyObject(r);
	return PL_OK;
}

static redisContext *connect_one(dlv_store_t *st, bool scripts, char *errstr, size_t errstr_size)
{
	redisContext *c = redisConnectWithTimeout(st->host, st->port, st->timeout);
	if (!c || c->err) {
		snprintf(errstr, errstr_size, "redis %s:%d unreachable: %s", st->host, st->port,
		         c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, st->timeout);
	pl_err_t e = PL_OK;
	if (st->password) {
		const char *a3[] = {"AUTH", st->user, st->password};
		const char *a2[] = {"AUTH", st->password};
		e = st->user ? run_simple(c, errstr, errstr_size, 3, a3)
		             : run_simple(c, errstr, errstr_size, 2, a2);
	}
	if (e == PL_OK && st->db) {
		char db[16];
		snprintf(db, sizeof(db), "%d", st->db);
		const char *argv[] = {"SELECT", db};
		e = run_simple(c, errstr, errstr_size, 2, argv);
	}
	if (e == PL_OK && scripts)
		e = load_scripts(st, c, errstr, errstr_size);
	if (e != PL_OK) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Takes a connection from the pool (connecting a new one when none is idle and the pool has
 * room; waiting otherwise). NULL + errstr when Redis cannot be reached. */
static redisContext *acquire(dlv_store_t *st, char *errstr, size_t errstr_size)
{
	pthread_mutex_lock(&st->lock);
	while (st->nidle == 0 && st->open >= st->max)
		pthread_cond_wait(&st->cond, &st->lock);
	if (st->nidle) {
		redisContext *c = st->idle[--st->nidle];
		pthread_mutex_unlock(&st->lock);
		return c;
	}
	st->open++;
	pthread_mutex_unlock(&st->lock);
	redisContext *c = connect_one(st, true, errstr, errstr_size);
	if (!c) {
		pthread_mutex_lock(&st->lock);
		st->open--;
		pthread_cond_signal(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	return c;
}

/* Returns a connection; broken ones (I/O error, timeout: the protocol state is unknown) are
 * closed so the next acquire reconnects. */
static void release(dlv_store_t *st, redisContext *c)
{
	bool broken = c->err != 0;
	if (broken)
		redisFree(c);
	pthread_mutex_lock(&st->lock);
	if (broken)
		st->open--;
	else
		st->idle[st->nidle++] = c;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

static void probe_ping(void *arg)
{
	char errstr[256];
	store_ping(arg, errstr, sizeof(errstr)); /* notes its outcome */
}

dlv_store_t *store_new(const dlv_store_opts_t *opts, char *errstr, size_t errstr_size)
{
	dlv_store_t *st = pl_calloc(1, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->max = opts->pool_size ? opts->pool_size : 4;
	st->idle = pl_calloc(st->max, sizeof(*st->idle));
	int ms = opts->timeout_ms > 0 ? opts->timeout_ms : 2000;
	st->timeout = (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	st->retention_ms = (opts->retention_s > 0 ? opts->retention_s : 7 * 86400) * 1000;
	st->history_max = opts->history_max > 0 ? opts->history_max : 100;
	/* idle ping each second; an answer older than two timeouts and two pings is stale */
	st->probe = pl_probe_new("Redis", 1000, 2000 + 2 * (int64_t)ms);
	if (!parse_url(st, opts->url, errstr, errstr_size)) {
		store_destroy(st);
		return NULL;
	}
	pl_probe_start(st->probe, probe_ping, st);
	return st;
}

void store_destroy(dlv_store_t *st)
{
	if (!st)
		return;
	if (st->sub_running) {
		st->stopping = true;
		pthread_join(st->sub_thread, NULL);
	}
	pl_probe_destroy(st->probe); /* joins the ping thread */
	for (unsigned i = 0; i < st->nidle; i++)
		redisFree(st->idle[i]);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	pl_free(st->idle);
	pl_free(st->host);
	pl_free(st->user);
	pl_free(st->password);
	pl_free(st);
}

/* ---- apply -------------------------------------------------------------------------------- */

/* One op's script keys and arguments; they point into its own buffers and the op's strings. */
typedef struct op_args {
	int nkeys, nargs;
	const char *keys[4];
	const char *args[12];
	dlv_keys_t key;
	char summary[KEYS_NAME_MAX], num[2][24], when[32], real[4][40];
} op_args_t;

static pl_err_t build_lifecycle(const store_op_t *op, op_args_t *a, char *errstr,
                                size_t errstr_size)
{
	char time[32];
	if (!op->delivery_id || !op->event_id || !op->stage || !op->owner_id || !op->event_json ||
	    !op->entry_json || pl_time_format(op->requested_at, a->when) != PL_OK ||
	    pl_time_format(op->time, time) != PL_OK) {
		snprintf(errstr, errstr_size, "lifecycle event lacks a field the store needs");
		return PL_ERR_SCHEMA;
	}
	pl_err_t e = keys_delivery(op->delivery_id, &a->key, errstr, errstr_size);
	if (e == PL_OK)
		e = keys_summary(op->owner_id, atoi(a->when), atoi(a->when + 5), a->summary, errstr,
		                 errstr_size);
	if (e != PL_OK)
		return e;
	pl_json_integer_text(op->version, a->num[0]);
	pl_json_integer_text(op->time, a->num[1]);
	const char *keys[] = {a->key.delivery, a->key.history, a->key.telemetry, a->summary};
	a->nkeys = 4;
	memcpy(a->keys, keys, sizeof(keys));
	const char *args[] = {"L",
	                      a->num[0],
	                      op->event_id,
	                      op->stage,
	                      op->event_json,
	                      op->entry_json,
	                      op->delivery_id,
	                      a->key.channel,
	                      a->num[1]};
	a->nargs = 9;
	memcpy(a->args, args, sizeof(args));
	return PL_OK;
}

static pl_err_t build_telemetry(const store_op_t *op, op_args_t *a, char *errstr,
                                size_t errstr_size)
{
	if (!op->delivery_id || !isfinite(op->latitude) || !isfinite(op->longitude) ||
	    !isfinite(op->altitude) || !isfinite(op->speed_mps) ||
	    pl_time_format(op->time, a->when) != PL_OK) {
		snprintf(errstr, errstr_size, "telemetry lacks a field the store needs");
		return PL_ERR_SCHEMA;
	}
	pl_err_t e = keys_delivery(op->delivery_id, &a->key, errstr, errstr_size);
	if (e != PL_OK)
		return e;
	pl_json_integer_text(op->seq, a->num[0]);
	pl_json_integer_text(op->time, a->num[1]);
	/* the shortest text that reads back as the same double (strtod in telemetry_from_hash) */
	pl_json_real_text(op->latitude, a->real[0]);
	pl_json_real_text(op->longitude, a->real[1]);
	pl_json_real_text(op->altitude, a->real[2]);
	pl_json_real_text(op->speed_mps, a->real[3]);
	const char *keys[] = {a->key.delivery, a->key.history, a->key.telemetry};
	a->nkeys = 3;
	memcpy(a->keys, keys, sizeof(keys));
	const char *args[] = {"T",
	                      a->key.channel,
	                      a->num[0],
	                      a->num[1],
	                      a->when,
	                      a->real[0],
	                      a->real[1],
	                      a->real[2],
	                      a->real[3],
	                      op->phase ? op->phase : "",
	                      op->drone_id ? op->drone_id : "",
	                      op->event_id ? op->event_id : ""};
	a->nargs = 12;
	memcpy(a->args, args, sizeof(args));
	return PL_OK;
}

/* One EVALSHA of the apply script over ops idx[0..n) (reloading the script once on NOSCRIPT).
 * Fills err/applied of the first *done ops, which ran. Returns PL_OK when all n ran; else the
 * error (reason in errstr) of op idx[*done], with *whole = true when the whole call failed and
 * the reply names no op (the ops from idx[*done] on may or may not have run). */
static pl_err_t eval_batch(dlv_store_t *st, redisContext *c, store_op_t *ops, const op_args_t *a,
                           const size_t *idx, size_t n, size_t *done, bool *whole, char *errstr,
                           size_t errstr_size)
{
	*done = 0;
	*whole = true;
	size_t nkeys = 0, argc = 3 + 2; /* EVALSHA sha numkeys, keys, retention history_max, args */
	for (size_t i = 0; i < n; i++) {
		nkeys += (size_t)a[idx[i]].nkeys;
		argc += (size_t)(a[idx[i]].nkeys + a[idx[i]].nargs);
	}
	const char **argv = pl_malloc(argc * sizeof(*argv));
	size_t *lens = pl_malloc(argc * sizeof(*lens));
	size_t k = 3;
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < a[idx[i]].nkeys; j++)
			argv[k++] = a[idx[i]].keys[j];
	char retention[24], history_max[24];
	pl_json_integer_text(st->retention_ms, retention);
	pl_json_integer_text(st->history_max, history_max);
	argv[k++] = retention;
	argv[k++] = history_max;
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < a[idx[i]].nargs; j++)
			argv[k++] = a[idx[i]].args[j];
	for (k = 3; k < argc; k++)
		lens[k] = strlen(argv[k]);
	char numkeys[24], sha[48];
	snprintf(numkeys, sizeof(numkeys), "%zu", nkeys);
	pl_err_t e = PL_ERR_TRANSIENT;
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&st->lock);
		snprintf(sha, sizeof(sha), "%s", st->sha_apply);
		pthread_mutex_unlock(&st->lock);
		argv[0] = "EVALSHA";
		argv[1] = sha;
		argv[2] = numkeys;
		for (k = 0; k < 3; k++)
			lens[k] = strlen(argv[k]);
		redisReply *r;
		e = run(c, &r, errstr, errstr_size, (int)argc, argv, lens);
		if (e != PL_OK) {
			if (attempt == 0 && strstr(errstr, "NOSCRIPT") && c->err == 0 &&
			    load_scripts(st, c, errstr, errstr_size) == PL_OK)
				continue;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY) {
			snprintf(errstr, errstr_size, "redis: the apply script answered no array");
			e = PL_ERR_REJECTED;
			freeReplyObject(r);
			break;
		}
		*whole = false;
		for (size_t i = 0; i < r->elements && i < n && e == PL_OK; i++) {
			const redisReply *el = r->element[i];
			if (el->type == REDIS_REPLY_INTEGER) {
				ops[idx[i]].err = PL_OK;
				ops[idx[i]].applied = el->integer == 1;
				ops[idx[i]].expired = el->integer == 2;
				(*done)++;
			} else {
				snprintf(errstr, errstr_size, "redis: %s",
				         el->type == REDIS_REPLY_ERROR ? el->str
				                                       : "unexpected answer");
				e = el->type == REDIS_REPLY_ERROR && transient_reply(el->str)
				        ? PL_ERR_TRANSIENT
				        : PL_ERR_REJECTED;
			}
		}
		if (e == PL_OK && *done < n) {
			snprintf(errstr, errstr_size,
			         "redis: the apply script answered for %zu of %zu", *done, n);
			e = PL_ERR_TRANSIENT;
		}
		freeReplyObject(r);
		break;
	}
	pl_free(argv);
	pl_free(lens);
	return e;
}

static void op_fail(store_op_t *op, pl_err_t e, const char *errstr)
{
	op->err = e;
	op->applied = op->expired = false;
	snprintf(op->errstr, sizeof(op->errstr), "%s", errstr);
}

void store_apply(dlv_store_t *st, store_op_t *ops, size_t n)
{
	/* ~3 KB per op, filled by the builders: not zeroed (calloc of 64 of them was 5% of a
	 * replay's CPU) */
	op_args_t *a = pl_malloc((n ? n : 1) * sizeof(*a));
	size_t *runnable = pl_malloc((n ? n : 1) * sizeof(*runnable)), nrunnable = 0;
	for (size_t i = 0; i < n; i++) {
		a[i].nkeys = a[i].nargs = 0;
		ops[i].err =
		    ops[i].telemetry
		        ? build_telemetry(&ops[i], &a[i], ops[i].errstr, sizeof(ops[i].errstr))
		        : build_lifecycle(&ops[i], &a[i], ops[i].errstr, sizeof(ops[i].errstr));
		ops[i].applied = ops[i].expired = false;
		if (ops[i].err == PL_OK)
			runnable[nrunnable++] = i;
	}
	char errstr[256];
	redisContext *c = NULL;
	bool single = false; /* a failed call named no op: go on one op per call to find it */
	bool refused = false, answered = true; /* a write refused for now; Redis answered it */
	for (size_t next = 0; next < nrunnable;) {
		if (!c && !(c = acquire(st, errstr, sizeof(errstr)))) {
			for (; next < nrunnable; next++)
				op_fail(&ops[runnable[next]], PL_ERR_TRANSIENT, errstr);
			refused = true;
			answered = false;
			break;
		}
		size_t count = single ? 1 : nrunnable - next, done;
		bool whole;
		pl_err_t e = eval_batch(st, c, ops, a, runnable + next, count, &done, &whole,
		                        errstr, sizeof(errstr));
		next += done;
		if (e == PL_OK)
			continue;
		if (e == PL_ERR_TRANSIENT) {
			for (; next < nrunnable; next++)
				op_fail(&ops[runnable[next]], PL_ERR_TRANSIENT, errstr);
			refused = true;
			answered = c->err == 0; /* an error reply (OOM, BUSY), not a broken link */
			break;
		}
		if (whole && count > 1) {
			/* the ops may have run in part: again, in order, one by one */
			single = true;
			continue;
		}
		/* this op's own error; the rest goes on */
		op_fail(&ops[runnable[next++]], e, errstr);
	}
	if (c)
		release(st, c);
	if (nrunnable > 0) {
		pl_probe_note(st->probe, PL_PROBE_CALLS, answered, errstr);
		pl_probe_note(st->probe, PL_PROBE_WRITES, !refused, errstr);
	}
	pl_free(a);
	pl_free(runnable);
}

/* ---- reads -------------------------------------------------------------------------------- */

/* Telemetry hash fields (HGETALL) -> the DroneTelemetry-shaped object status.h reads. */
static json_t *telemetry_from_hash(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
		return NULL;
	json_t *tm = json_object();
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
		if (!k || !v)
			continue;
		if (strcmp(k, "seq") == 0 || strcmp(k, "time") == 0)
			json_object_set_new(tm, k, json_integer(strtoll(v, NULL, 10)));
		else if (strcmp(k, "latitude") == 0 || strcmp(k, "longitude") == 0 ||
		         strcmp(k, "altitude") == 0 || strcmp(k, "speedMps") == 0)
			json_object_set_new(tm, k, json_real(strtod(v, NULL)));
		else if (*v)
			json_object_set_new(tm, k, json_string(v));
	}
	return tm;
}

/* Records a read's outcome: one that got no answer (unreachable, timed out) fails the calls. */
static pl_err_t noted(dlv_store_t *st, pl_err_t e, const char *errstr)
{
	pl_probe_note(st->probe, PL_PROBE_CALLS, e != PL_ERR_TRANSIENT, errstr);
	return e;
}

/* The keys of a delivery for a read; an id no key can have is an unknown delivery. */
static bool read_keys(const char *id, dlv_keys_t *keys, char *errstr, size_t errstr_size)
{
	char why[160];
	if (keys_delivery(id, keys, why, sizeof(why)) == PL_OK)
		return true;
	snprintf(errstr, errstr_size, "no delivery: %s", why);
	return false;
}

pl_err_t store_get(dlv_store_t *st, const char *id, json_t **lifecycle, json_t **telemetry,
                   char *errstr, size_t errstr_size)
{
	*lifecycle = NULL;
	if (telemetry)
		*telemetry = NULL;
	dlv_keys_t keys;
	if (!read_keys(id, &keys, errstr, errstr_size))
		return PL_ERR_NOT_FOUND;
	redisContext *c = acquire(st, errstr, errstr_size);
	if (!c)
		return noted(st, PL_ERR_TRANSIENT, errstr);
	const char *a1[] = {"HGET", keys.delivery, "event"}, *a2[] = {"HGETALL", keys.telemetry};
	redisAppendCommandArgv(c, 3, a1, NULL);
	redisAppendCommandArgv(c, 2, a2, NULL);
	redisReply *r1 = NULL, *r2 = NULL;
	pl_err_t e = PL_OK;
	if (redisGetReply(c, (void **)&r1) != REDIS_OK ||
	    redisGetReply(c, (void **)&r2) != REDIS_OK) {
		link_error(c, errstr, errstr_size);
		e = PL_ERR_TRANSIENT;
	} else if (r1->type == REDIS_REPLY_ERROR || r2->type == REDIS_REPLY_ERROR) {
		snprintf(errstr, errstr_size, "redis: %s",
		         r1->type == REDIS_REPLY_ERROR ? r1->str : r2->str);
		e = transient_reply(errstr + 7) ? PL_ERR_TRANSIENT : PL_ERR_REJECTED;
	} else if (r1->type != REDIS_REPLY_STRING) {
		snprintf(errstr, errstr_size, "no delivery %s", id);
		e = PL_ERR_NOT_FOUND;
	} else {
		*lifecycle = json_loadb(r1->str, r1->len, 0, NULL);
		if (!json_is_object(*lifecycle)) {
			json_decref(*lifecycle);
			*lifecycle = NULL;
			snprintf(errstr, errstr_size, "stored delivery %s is not JSON", id);
			e = PL_ERR_REJECTED;
		} else if (telemetry) {
			*telemetry = telemetry_from_hash(r2);
		}
	}
	if (r1)
		freeReplyObject(r1);
	if (r2)
		freeReplyObject(r2);
	release(st, c);
	return noted(st, e, errstr);
}

pl_err_t store_history(dlv_store_t *st, const char *id, json_t **entries, char *errstr,
                       size_t errstr_size)
{
	*entries = NULL;
	dlv_keys_t keys;
	if (!read_keys(id, &keys, errstr, errstr_size))
		return PL_ERR_NOT_FOUND;
	redisContext *c = acquire(st, errstr, errstr_size);
	if (!c)
		return noted(st, PL_ERR_TRANSIENT, errstr);
	const char *argv[] = {"LRANGE", keys.history, "0", "-1"};
	redisReply *r;
	pl_err_t e = run(c, &r, errstr, errstr_size, 4, argv, NULL);
	if (e == PL_OK) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
			snprintf(errstr, errstr_size, "no delivery %s", id);
			e = PL_ERR_NOT_FOUND;
		} else {
			*entries = json_array();
			for (size_t i = 0; i < r->elements; i++) {
				json_t *entry = r->element[i]->str
				                    ? json_loadb(r->element[i]->str,
				                                 r->element[i]->len, 0, NULL)
				                    : NULL;
				if (entry)
					json_array_append_new(*entries, entry);
			}
		}
		freeReplyObject(r);
	}
	release(st, c);
	return noted(st, e, errstr);
}

pl_err_t store_summary(dlv_store_t *st, const char *owner_id, int year, int month, long long *count,
                       char *errstr, size_t errstr_size)
{
	*count = 0;
	char key[KEYS_NAME_MAX];
	pl_err_t e = keys_summary(owner_id, year, month, key, errstr, errstr_size);
	if (e != PL_OK)
		return e;
	redisContext *c = acquire(st, errstr, errstr_size);
	if (!c)
		return noted(st, PL_ERR_TRANSIENT, errstr);
	const char *argv[] = {"SCARD", key};
	redisReply *r;
	e = run(c, &r, errstr, errstr_size, 2, argv, NULL);
	if (e == PL_OK) {
		*count = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
		freeReplyObject(r);
	}
	release(st, c);
	return noted(st, e, errstr);
}

pl_err_t store_ping(dlv_store_t *st, char *errstr, size_t errstr_size)
{
	redisContext *c = acquire(st, errstr, errstr_size);
	if (!c)
		return noted(st, PL_ERR_TRANSIENT, errstr);
	const char *argv[] = {"PING"};
	pl_err_t e = run_simple(c, errstr, errstr_size, 1, argv);
	release(st, c);
	return noted(st, e, errstr);
}

bool store_ready(dlv_store_t *st, char *reason, size_t reason_size)
{
	return pl_probe_ready(st->probe, reason, reason_size);
}

/* ---- subscription ------------------------------------------------------------------------- */

static void handle_message(dlv_store_t *st, const redisReply *r)
{
	/* ["pmessage", pattern, channel, payload] */
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || !r->element[0]->str ||
	    strcmp(r->element[0]->str, "pmessage") != 0 || !r->element[2]->str)
		return;
	const char *channel = r->element[2]->str;
	size_t plen = strlen(KEYS_CHANNEL_PREFIX);
	if (strncmp(channel, KEYS_CHANNEL_PREFIX, plen) == 0 && channel[plen])
		st->sub_fn(channel + plen, st->sub_arg);
}

/* Reads messages until stop or a connection error. Polls the socket with a timeout so the
 * stop flag is seen within half a second (a hiredis read timeout would break the context). */
static void subscription_session(dlv_store_t *st, redisContext *c)
{
	while (!st->stopping) {
		void *reply = NULL;
		if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
			return;
		if (reply) {
			handle_message(st, reply);
			freeReplyObject(reply);
			continue;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int n = poll(&pfd, 1, 500);
		if (n < 0 && errno != EINTR)
			return;
		if (n > 0 && redisBufferRead(c) != REDIS_OK)
			return;
	}
}

static void *subscription_main(void *arg)
{
	dlv_store_t *st = arg;
	int backoff_ms = 100;
	bool lost = false; /* logged once per outage, not per attempt */
	while (!st->stopping) {
		char err[256] = "";
		redisContext *c = connect_one(st, false, err, sizeof(err));
		if (c) {
			redisReply *r = redisCommand(c, "PSUBSCRIBE %s*", KEYS_CHANNEL_PREFIX);
			bool ok = r && r->type == REDIS_REPLY_ARRAY;
			if (r)
				freeReplyObject(r);
			if (ok) {
				if (lost)
					pl_log(PL_LOG_INFO, "redis_subscription_restored", NULL,
					       "live updates flowing again");
				lost = false;
				backoff_ms = 100;
				st->sub_fn(NULL, st->sub_arg); /* may have missed changes */
				subscription_session(st, c);
				snprintf(err, sizeof(err), "%s",
				         c->err ? c->errstr : "connection closed");
			}
			redisFree(c);
		}
		if (!lost && !st->stopping) {
			pl_log(PL_LOG_WARN, "redis_subscription_lost",
			       PL_LOG_FIELDS(PL_LS("err", err)),
			       "live updates paused until Redis is reachable; reconnecting");
			lost = true;
		}
		for (int waited = 0; waited < backoff_ms && !st->stopping; waited += 50)
			poll(NULL, 0, 50);
		backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2;
	}
	return NULL;
}

pl_err_t store_subscribe(dlv_store_t *st, store_change_fn fn, void *arg, char *errstr,
                         size_t errstr_size)
{
	st->sub_fn = fn;
	st->sub_arg = arg;
	if (pthread_create(&st->sub_thread, NULL, subscription_main, st) != 0) {
		snprintf(errstr, errstr_size, "cannot start the subscription thread");
		return PL_ERR_FATAL;
	}
	st->sub_running = true;
	return PL_OK;
}
