/* test_redis_store.c — integration test of dronepipe-delivery's Redis store
 * (consumers/delivery/store.c) against the real server in DP_REDIS_URL (scripts/test-it.sh points
 * it at an isolated Redis): the batch apply in one script call.
 *   order:     a delivery's events in one call land in version order, stale ones change nothing;
 *   refusals:  a key holding a string (WRONGTYPE) fails only its own records, in the middle of a
 *              call; the records after them still run;
 *   schema:    a record lacking a field fails alone, nothing written for it;
 *   size:      a call of 300 records;
 *   NOSCRIPT:  after SCRIPT FLUSH the next call loads the script again;
 *   history:   the history keeps the latest history_max entries;
 *   expiry:    every key of a delivery (and the summary set) expires retention after the
 *              latest update's time, all at the same moment; a record older than the retention
 *              is not applied and writes nothing;
 *   long id:   a deliveryId over KEYS_ID_MAX bytes is refused alone (PL_ERR_INVALID, its
 *              length and the limit in the reason), one of exactly KEYS_ID_MAX bytes applies;
 *   OOM:       with maxmemory reached a write fails PL_ERR_TRANSIENT naming OOM, store_ready
 *              says so; once memory is there again the same records apply and it is ready;
 *   down:      a server that is not there fails every record with PL_ERR_TRANSIENT, and
 *              store_ready says why.
 * Each run uses its own delivery ids. Closing line: "redis_store_it: N passed, M failed"; exit
 * status 1 when a check failed, 2 when DP_REDIS_URL is not set. */
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery/keys.h"
#include "delivery/store.h"
#include "jsonw.h"
#include "log.h"
#include "mem.h"
#include "check.h"
#include "timefmt.h"

/* an hour ago at the start: records within the retention */
static int64_t T0;
#define RETENTION_S (7 * 86400LL)

static char run_id[16];
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static redisContext *rc; /* the test's own connection, to look at the keys */

static json_t *lifecycle(const char *id, int version)
{
	static const char *const stages[] = {"Created", "Scheduled", "HeadedToPickup",
	                                     "HeadedToDropoff", "Completed"};
	char event_id[96];
	snprintf(event_id, sizeof(event_id), "%s-lc-%d", id, version);
	return json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:s}", "deliveryId", id, "eventId",
	                 event_id, "stage", stages[(version - 1) % 5], "version", version, "time",
	                 (json_int_t)(T0 + version * 60000), "requestedAt", (json_int_t)T0,
	                 "ownerId", "owner-it");
}

/* The ops own copies of their strings (ops_free). */
static void op_lifecycle(store_op_t *op, const char *id, int version)
{
	json_t *e = lifecycle(id, version);
	char entry[32];
	snprintf(entry, sizeof(entry), "{\"version\":%d}", version);
	*op = (store_op_t){.delivery_id = pl_strdup(id),
	                   .event_id = pl_strdup(json_string_value(json_object_get(e, "eventId"))),
	                   .stage = pl_strdup(json_string_value(json_object_get(e, "stage"))),
	                   .owner_id = pl_strdup("owner-it"),
	                   .version = version,
	                   .time = T0 + version * 60000,
	                   .requested_at = T0,
	                   .event_json = pl_json_text(e, PL_JSONW_SORTED, NULL),
	                   .entry_json = pl_strdup(entry)};
	json_decref(e);
}

static void op_telemetry(store_op_t *op, const char *id, int seq)
{
	*op = (store_op_t){.telemetry = true,
	                   .delivery_id = pl_strdup(id),
	                   .drone_id = pl_strdup("drone-1"),
	                   .phase = pl_strdup("ToPickup"),
	                   .seq = seq,
	                   .time = T0 + seq * 1000,
	                   .latitude = 47.6 + seq * 0.001,
	                   .longitude = -122.3};
}

static void ops_free(store_op_t *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *owned[] = {ops[i].delivery_id, ops[i].event_id,   ops[i].stage,
		                       ops[i].owner_id,    ops[i].event_json, ops[i].entry_json,
		                       ops[i].drone_id,    ops[i].phase};
		for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++)
			pl_free((char *)owned[k]);
	}
}

static void id_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "it-%s-%s", run_id, name);
}

static long long llen(const char *key)
{
	redisReply *r = redisCommand(rc, "LLEN %s", key);
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return n;
}

static int hget_int(const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	int v = r && r->type == REDIS_REPLY_STRING ? atoi(r->str) : -1;
	freeReplyObject(r);
	return v;
}

static dlv_store_t *store_open_with(const char *url, long history_max)
{
	char err[256];
	dlv_store_opts_t so = {.url = url,
	                       .pool_size = 2,
	                       .timeout_ms = 2000,
	                       .retention_s = RETENTION_S,
	                       .history_max = history_max};
	dlv_store_t *st = store_new(&so, err, sizeof(err));
	if (!st)
		printf("store_new: %s\n", err);
	return st;
}

static dlv_store_t *store_open(const char *url)
{
	return store_open_with(url, 100);
}

static void key_of(char *out, size_t size, const char *id, const char *suffix)
{
	dlv_keys_t k;
	char err[128];
	if (keys_delivery(id, &k, err, sizeof(err)) != PL_OK) {
		snprintf(out, size, "?");
		return;
	}
	size_t a = strlen(k.delivery), b = strlen(suffix);
	if (a + b + 1 > size) {
		snprintf(out, size, "?");
		return;
	}
	memcpy(out, k.delivery, a);
	memcpy(out + a, suffix, b + 1);
}

static long long pexpiretime(const char *key)
{
	redisReply *r = redisCommand(rc, "PEXPIRETIME %s", key);
	long long t = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
	freeReplyObject(r);
	return t;
}

/* P's key holds a string: P's records fail with WRONGTYPE where they are in the call; Q's and
 * R's, before and after them, apply. Run twice: the second time Q's and R's are stale. */
static void test_refusal_in_the_middle(dlv_store_t *st)
{
	char p[64], q[64], r[64], key[128];
	id_of(p, sizeof(p), "p");
	id_of(q, sizeof(q), "q");
	id_of(r, sizeof(r), "r");
	key_of(key, sizeof(key), p, "");
	freeReplyObject(redisCommand(rc, "SET %s not-a-hash", key));
	for (int round = 0; round < 2; round++) {
		store_op_t ops[6];
		op_lifecycle(&ops[0], q, 1);
		op_lifecycle(&ops[1], p, 1);
		op_lifecycle(&ops[2], q, 2);
		op_lifecycle(&ops[3], p, 2);
		op_telemetry(&ops[4], r, 0);
		op_lifecycle(&ops[5], q, 3);
		store_apply(st, ops, 6);
		const int qi[] = {0, 2, 5};
		for (int k = 0; k < 3; k++)
			CHECK(ops[qi[k]].err == PL_OK && ops[qi[k]].applied == (round == 0),
			      "round %d: Q's op %d: err %s applied %d (%s)", round, qi[k],
			      pl_err_str(ops[qi[k]].err), ops[qi[k]].applied, ops[qi[k]].errstr);
		CHECK(ops[4].err == PL_OK && ops[4].applied == (round == 0),
		      "round %d: R's telemetry: err %s applied %d", round, pl_err_str(ops[4].err),
		      ops[4].applied);
		for (int k = 1; k <= 3; k += 2)
			CHECK(ops[k].err == PL_ERR_REJECTED && strstr(ops[k].errstr, "WRONGTYPE"),
			      "round %d: P's op %d: err %s (%s)", round, k, pl_err_str(ops[k].err),
			      ops[k].errstr);
		ops_free(ops, 6);
	}
	char khist[160];
	key_of(key, sizeof(key), q, "");
	snprintf(khist, sizeof(khist), "%s:history", key);
	CHECK(llen(khist) == 3, "Q's history: %lld entries, want 3", llen(khist));
	CHECK(hget_int(key, "version") == 3, "Q's version %d, want 3", hget_int(key, "version"));
	key_of(key, sizeof(key), p, "");
	snprintf(khist, sizeof(khist), "%s:history", key);
	CHECK(llen(khist) == 0, "P has no history (%lld)", llen(khist));
}

/* A record lacking a field fails alone with PL_ERR_SCHEMA; the others apply. */
static void test_schema(dlv_store_t *st)
{
	char a[64], key[128];
	id_of(a, sizeof(a), "schema");
	store_op_t ops[3];
	op_telemetry(&ops[0], a, 0);
	op_telemetry(&ops[1], a, 1);
	pl_free((char *)ops[1].delivery_id); /* the handler's mark of a record lacking a field */
	ops[1].delivery_id = NULL;
	op_telemetry(&ops[2], a, 2);
	store_apply(st, ops, 3);
	CHECK(ops[0].err == PL_OK && ops[0].applied, "first telemetry applied");
	CHECK(ops[1].err == PL_ERR_SCHEMA && strstr(ops[1].errstr, "lacks"),
	      "telemetry without deliveryId: %s (%s)", pl_err_str(ops[1].err), ops[1].errstr);
	CHECK(ops[2].err == PL_OK && ops[2].applied, "third telemetry applied: %s",
	      pl_err_str(ops[2].err));
	key_of(key, sizeof(key), a, ":tm");
	CHECK(hget_int(key, "seq") == 2, "stored seq %d, want 2", hget_int(key, "seq"));
	ops_free(ops, 3);
}

/* 300 records in one call: 60 deliveries x 5 versions, interleaved; stale repeats at the end. */
static void test_big_call(dlv_store_t *st)
{
	enum { D = 60, V = 5, N = D * V + D };
	store_op_t *ops = calloc(N, sizeof(*ops));
	char ids[D][64];
	for (int d = 0; d < D; d++) {
		char name[16];
		snprintf(name, sizeof(name), "big%d", d);
		id_of(ids[d], sizeof(ids[d]), name);
	}
	size_t n = 0;
	for (int v = 1; v <= V; v++)
		for (int d = 0; d < D; d++)
			op_lifecycle(&ops[n++], ids[d], v);
	for (int d = 0; d < D; d++)
		op_lifecycle(&ops[n++], ids[d], 2); /* older than the stored version */
	store_apply(st, ops, n);
	int applied = 0, stale = 0, errors = 0;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].err != PL_OK)
			errors++;
		else if (ops[i].applied)
			applied++;
		else
			stale++;
	}
	CHECK(applied == D * V && stale == D && errors == 0,
	      "applied %d (want %d), stale %d (want %d), errors %d", applied, D * V, stale, D,
	      errors);
	int in_order = 0;
	for (int d = 0; d < D; d++) {
		char key[128], khist[160];
		key_of(key, sizeof(key), ids[d], "");
		snprintf(khist, sizeof(khist), "%s:history", key);
		redisReply *r = redisCommand(rc, "LRANGE %s 0 -1", khist);
		bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == V;
		for (size_t i = 0; ok && i < V; i++) {
			char want[32];
			snprintf(want, sizeof(want), "{\"version\":%zu}", i + 1);
			ok = strcmp(r->element[i]->str, want) == 0;
		}
		freeReplyObject(r);
		in_order += ok;
	}
	CHECK(in_order == D, "%d of %d histories hold versions 1..5 in order", in_order, D);
	ops_free(ops, n);
	free(ops);
}

/* SCRIPT FLUSH (or a Redis restart) drops the script: the next call loads it again. */
static void test_noscript(dlv_store_t *st)
{
	char a[64];
	id_of(a, sizeof(a), "noscript");
	freeReplyObject(redisCommand(rc, "SCRIPT FLUSH"));
	store_op_t ops[2];
	op_lifecycle(&ops[0], a, 1);
	op_telemetry(&ops[1], a, 0);
	store_apply(st, ops, 2);
	CHECK(ops[0].err == PL_OK && ops[0].applied && ops[1].err == PL_OK && ops[1].applied,
	      "after SCRIPT FLUSH: %s %s (%s)", pl_err_str(ops[0].err), pl_err_str(ops[1].err),
	      ops[0].errstr);
	ops_free(ops, 2);
}

/* history_max 3: five versions leave the latest three, in order. */
static void test_history_cap(const char *url)
{
	dlv_store_t *st = store_open_with(url, 3);
	char a[64], khist[160];
	id_of(a, sizeof(a), "cap");
	store_op_t ops[5];
	for (int v = 1; v <= 5; v++)
		op_lifecycle(&ops[v - 1], a, v);
	store_apply(st, ops, 3); /* two calls: the cap holds across calls too */
	store_apply(st, ops + 3, 2);
	key_of(khist, sizeof(khist), a, ":history");
	redisReply *r = redisCommand(rc, "LRANGE %s 0 -1", khist);
	char got[128] = "";
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		strncat(got, r->element[i]->str, sizeof(got) - strlen(got) - 1);
	freeReplyObject(r);
	CHECK(strcmp(got, "{\"version\":3}{\"version\":4}{\"version\":5}") == 0,
	      "history capped at 3: the latest three in order (got %s)", got);
	ops_free(ops, 5);
	store_destroy(st);
}

/* Every key of a delivery expires at the same moment: retention after the latest update's
 * time; the summary set retention after its latest Created. */
static void test_expiry(dlv_store_t *st)
{
	char a[64], kdel[160], khist[160], ktm[160], ksum[KEYS_NAME_MAX], err[128], when[32];
	id_of(a, sizeof(a), "ttl");
	key_of(kdel, sizeof(kdel), a, "");
	key_of(khist, sizeof(khist), a, ":history");
	key_of(ktm, sizeof(ktm), a, ":tm");
	pl_time_format(T0, when);
	keys_summary("owner-it", atoi(when), atoi(when + 5), ksum, err, sizeof(err));
	store_op_t ops[3];
	op_lifecycle(&ops[0], a, 1);  /* time T0 + 60 s */
	op_telemetry(&ops[1], a, 30); /* time T0 + 30 s: older, the expiry stays */
	store_apply(st, ops, 2);
	long long want = T0 + 60000 + RETENTION_S * 1000;
	CHECK(pexpiretime(kdel) == want && pexpiretime(khist) == want && pexpiretime(ktm) == want,
	      "hash, history and telemetry expire at the latest update + retention: %lld %lld "
	      "%lld, want %lld",
	      pexpiretime(kdel), pexpiretime(khist), pexpiretime(ktm), want);
	CHECK(pexpiretime(ksum) >= want, "the summary set expires no earlier (%lld)",
	      pexpiretime(ksum));
	op_telemetry(&ops[2], a, 300); /* T0 + 300 s: every key's expiry moves with it */
	store_apply(st, ops + 2, 1);
	want = T0 + 300000 + RETENTION_S * 1000;
	CHECK(pexpiretime(kdel) == want && pexpiretime(khist) == want && pexpiretime(ktm) == want,
	      "a later telemetry record moves every key's expiry: %lld %lld %lld, want %lld",
	      pexpiretime(kdel), pexpiretime(khist), pexpiretime(ktm), want);
	ops_free(ops, 3);

	/* telemetry first (the lifecycle partition lagging), then older lifecycle events: the
	 * telemetry hash keeps its later expiry, and the new keys take it */
	char c[64], kc[160], kchist[160], kctm[160];
	id_of(c, sizeof(c), "ttl-tm-first");
	key_of(kc, sizeof(kc), c, "");
	key_of(kchist, sizeof(kchist), c, ":history");
	key_of(kctm, sizeof(kctm), c, ":tm");
	store_op_t late[2];
	op_telemetry(&late[0], c, 600); /* T0 + 600 s */
	store_apply(st, late, 1);
	op_lifecycle(&late[1], c, 1); /* T0 + 60 s */
	store_apply(st, late + 1, 1);
	want = T0 + 600000 + RETENTION_S * 1000;
	CHECK(late[1].applied && pexpiretime(kc) == want && pexpiretime(kchist) == want &&
	          pexpiretime(kctm) == want,
	      "telemetry before the lifecycle: every key at the later update + retention: %lld "
	      "%lld %lld, want %lld",
	      pexpiretime(kc), pexpiretime(kchist), pexpiretime(kctm), want);
	ops_free(late, 2);

	/* older than the retention: not applied, nothing written (no partial resurrection) */
	char b[64], kb[160], kbtm[160];
	id_of(b, sizeof(b), "expired");
	key_of(kb, sizeof(kb), b, "");
	key_of(kbtm, sizeof(kbtm), b, ":tm");
	store_op_t old[2];
	op_lifecycle(&old[0], b, 1);
	old[0].time = now_ms() - RETENTION_S * 1000 - 1000;
	op_telemetry(&old[1], b, 1);
	old[1].time = old[0].time;
	store_apply(st, old, 2);
	CHECK(old[0].err == PL_OK && !old[0].applied && old[0].expired && old[1].err == PL_OK &&
	          !old[1].applied && old[1].expired,
	      "records older than the retention: expired, not applied (%s %d %d)",
	      pl_err_str(old[0].err), old[0].applied, old[0].expired);
	redisReply *r = redisCommand(rc, "EXISTS %s %s", kb, kbtm);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0,
	      "an expired record writes no key");
	freeReplyObject(r);
	ops_free(old, 2);
}

/* An id over KEYS_ID_MAX bytes is refused alone, with its length and the limit; exactly
 * KEYS_ID_MAX bytes is fine. */
static void test_long_id(dlv_store_t *st)
{
	char *longest = malloc(KEYS_ID_MAX + 2), *over = malloc(KEYS_ID_MAX + 2);
	memset(longest, 'x', KEYS_ID_MAX);
	longest[KEYS_ID_MAX] = '\0';
	memcpy(longest, run_id, strlen(run_id));
	memset(over, 'y', KEYS_ID_MAX + 1);
	over[KEYS_ID_MAX + 1] = '\0';
	memcpy(over, run_id, strlen(run_id));
	store_op_t ops[3];
	op_lifecycle(&ops[0], over, 1);
	op_lifecycle(&ops[1], longest, 1);
	op_telemetry(&ops[2], over, 1);
	store_apply(st, ops, 3);
	char want[96];
	snprintf(want, sizeof(want), "deliveryId is %d bytes long, over the limit of %d bytes",
	         KEYS_ID_MAX + 1, KEYS_ID_MAX);
	CHECK(ops[0].err == PL_ERR_INVALID && strstr(ops[0].errstr, want) &&
	          ops[2].err == PL_ERR_INVALID && strstr(ops[2].errstr, want),
	      "a deliveryId of %d bytes is refused naming its length: %s (%s)", KEYS_ID_MAX + 1,
	      pl_err_str(ops[0].err), ops[0].errstr);
	CHECK(ops[1].err == PL_OK && ops[1].applied, "a deliveryId of %d bytes applies: %s (%s)",
	      KEYS_ID_MAX, pl_err_str(ops[1].err), ops[1].errstr);
	char prefix[KEYS_NAME_MAX + 8];
	snprintf(prefix, sizeof(prefix), "dp:dlv:{%.*s*", KEYS_ID_MAX - 8, over);
	redisReply *r = redisCommand(rc, "KEYS %s", prefix);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 0,
	      "no key was written under a cut id");
	freeReplyObject(r);
	ops_free(ops, 3);
	free(longest);
	free(over);
}

static char *config_get(const char *name)
{
	redisReply *r = redisCommand(rc, "CONFIG GET %s", name);
	char *v = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? strdup(r->element[1]->str)
	                                                                : NULL;
	freeReplyObject(r);
	return v;
}

/* maxmemory reached: the write fails for now, naming OOM, and readiness says so; memory back:
 * the same records apply. */
static void test_oom(dlv_store_t *st)
{
	char *maxmemory = config_get("maxmemory"), *policy = config_get("maxmemory-policy");
	if (!maxmemory || !policy) {
		CHECK(0, "CONFIG GET maxmemory");
		return;
	}
	char a[64], reason[512] = "";
	id_of(a, sizeof(a), "oom");
	freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory-policy noeviction"));
	freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory 1"));
	store_op_t ops[2];
	op_lifecycle(&ops[0], a, 1);
	op_telemetry(&ops[1], a, 1);
	store_apply(st, ops, 2);
	CHECK(ops[0].err == PL_ERR_TRANSIENT && strstr(ops[0].errstr, "OOM") &&
	          ops[1].err == PL_ERR_TRANSIENT,
	      "maxmemory reached: the writes fail for now naming OOM: %s (%s)",
	      pl_err_str(ops[0].err), ops[0].errstr);
	CHECK(!store_ready(st, reason, sizeof(reason)) && strstr(reason, "refuses writes") &&
	          strstr(reason, "OOM"),
	      "not ready while Redis refuses writes: %s", reason);
	json_t *lc = NULL;
	char err[256];
	store_get(st, a, &lc, NULL, err, sizeof(err)); /* a read that works */
	CHECK(!store_ready(st, reason, sizeof(reason)),
	      "a successful read does not make it ready while writes fail");
	freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory %s", maxmemory));
	freeReplyObject(redisCommand(rc, "CONFIG SET maxmemory-policy %s", policy));
	store_apply(st, ops, 2);
	CHECK(ops[0].err == PL_OK && ops[0].applied && ops[1].err == PL_OK && ops[1].applied,
	      "memory back: the same records apply: %s %s", pl_err_str(ops[0].err),
	      pl_err_str(ops[1].err));
	CHECK(store_ready(st, reason, sizeof(reason)), "ready again (%s)", reason);
	ops_free(ops, 2);
	free(maxmemory);
	free(policy);
}

static void test_server_down(void)
{
	dlv_store_t *st = store_open("redis://127.0.0.1:1");
	store_op_t ops[3];
	op_lifecycle(&ops[0], "down-a", 1);
	op_telemetry(&ops[1], "down-a", 0);
	op_lifecycle(&ops[2], "down-b", 1);
	store_apply(st, ops, 3);
	for (int i = 0; i < 3; i++)
		CHECK(ops[i].err == PL_ERR_TRANSIENT && strstr(ops[i].errstr, "unreachable"),
		      "server down, op %d: %s (%s)", i, pl_err_str(ops[i].err), ops[i].errstr);
	char reason[512] = "";
	CHECK(!store_ready(st, reason, sizeof(reason)) && strncmp(reason, "Redis: ", 7) == 0,
	      "server down: not ready, and why: %s", reason);
	ops_free(ops, 3);
	store_destroy(st);
}

int main(void)
{
	const char *url = getenv("DP_REDIS_URL");
	pl_log_init("redis_store_it", PL_LOG_WARN);
	if (!url || !*url) {
		printf(
		    "redis_store_it: DP_REDIS_URL is not set (run through scripts/test-it.sh)\n");
		printf("redis_store_it: 0 passed, 1 failed\n");
		return 2;
	}
	snprintf(run_id, sizeof(run_id), "%d", (int)getpid());
	T0 = now_ms() - 3600 * 1000;
	const char *hp = url + strlen("redis://");
	char host[64] = "127.0.0.1";
	int port = 6379;
	sscanf(hp, "%63[^:/]:%d", host, &port);
	rc = redisConnect(host, port);
	if (!rc || rc->err) {
		printf("redis_store_it: cannot connect to %s\nredis_store_it: 0 passed, 1 failed\n",
		       url);
		return 1;
	}
	dlv_store_t *st = store_open(url);
	if (!st)
		return 1;
	test_refusal_in_the_middle(st);
	test_schema(st);
	test_big_call(st);
	test_noscript(st);
	test_history_cap(url);
	test_expiry(st);
	test_long_id(st);
	test_oom(st);
	char reason[512] = "";
	CHECK(store_ready(st, reason, sizeof(reason)), "ready after the calls (%s)", reason);
	store_destroy(st);
	test_server_down();
	redisFree(rc);
	printf("redis_store_it: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
