/* kafka_int.h — private to kafka.c and stage.c (the two modules that include librdkafka):
 * building a librdkafka configuration from the dronepipe config, log routing, error mapping. */
#ifndef PL_KAFKA_INT_H
#define PL_KAFKA_INT_H

#include <librdkafka/rdkafka.h>

#include "cfg.h"
#include "err.h"
#include "kafka.h"

/* New conf with bootstrap.servers, log routing into pl_log, then extra (NULL-terminated key/value
 * list, may be NULL), then the DP_KAFKA_PROP_* pass-through (which wins). Caller owns the conf
 * (rd_kafka_conf_destroy, or hand it to rd_kafka_new). NULL + errstr on a bad property. */
rd_kafka_conf_t *pl_kafka_conf_new(const pl_cfg_t *cfg, const char *const *extra, char *errstr,
                                   size_t errstr_size);

/* Fills r from a consumed message (borrowed: valid while m is). Headers beyond PL_MAX_HEADERS
 * are left out. */
void pl_kafka_record_fill(pl_record_t *r, const rd_kafka_message_t *m);

/* librdkafka error -> pl_err_t (transient vs permanent). */
pl_err_t pl_kafka_err(rd_kafka_resp_err_t err);

#endif
