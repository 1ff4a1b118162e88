/* mongo.c — shared mongoc glue for the store wrappers (see mongo.h). Owns the once-only driver
 * set-up; mongoc_cleanup is never called (it cannot be undone while another store of the process
 * may still use the driver). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "mongo.h"

static void mongoc_to_pl_log(mongoc_log_level_t level, const char *domain, const char *message,
                             void *user_data)
{
	(void)user_data;
	pl_log_level_t pl_level;
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
		pl_level = PL_LOG_ERROR;
		break;
	case MONGOC_LOG_LEVEL_WARNING: /* FerretDB 1.x has no endSessions: noise at shutdown */
		pl_level = strstr(message, "\"endSessions\"") ? PL_LOG_DEBUG : PL_LOG_WARN;
		break;
	case MONGOC_LOG_LEVEL_MESSAGE:
	case MONGOC_LOG_LEVEL_INFO:
		pl_level = PL_LOG_INFO;
		break;
	default:
		pl_level = PL_LOG_DEBUG;
		break;
	}
	if (pl_log_enabled(pl_level))
		pl_log(pl_level, "mongoc_log", PL_LOG_FIELDS(PL_LS("domain", domain)), "%s",
		       message);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup(void)
{
	mongoc_log_set_handler(mongoc_to_pl_log, NULL);
	mongoc_init();
}

static void uri_default(mongoc_uri_t *uri, const char *option, int32_t value)
{
	if (!mongoc_uri_has_option(uri, option))
		mongoc_uri_set_option_as_int32(uri, option, value);
}

mongoc_client_pool_t *pl_mongo_pool_new(const char *uri_text, const char *db_name,
                                        const char *appname, int socket_timeout_ms,
                                        int connect_timeout_ms, mongoc_uri_t **uri_out,
                                        char *errstr, size_t errstr_size)
{
	pthread_once(&once, setup);
	*uri_out = NULL;
	if (!db_name || !*db_name || strpbrk(db_name, "/\\. \"$") || strlen(db_name) > 63) {
		snprintf(errstr, errstr_size, "invalid database name '%s'", db_name ? db_name : "");
		return NULL;
	}
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_text ? uri_text : "", &error);
	if (!uri) {
		snprintf(errstr, errstr_size, "invalid MongoDB URI: %s", error.message);
		return NULL;
	}
	int connect_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 2000;
	uri_default(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, connect_ms);
	uri_default(uri, MONGOC_URI_CONNECTTIMEOUTMS, connect_ms);
	uri_default(uri, MONGOC_URI_SOCKETTIMEOUTMS,
	            socket_timeout_ms > 0 ? socket_timeout_ms : 10000);
	if (!mongoc_uri_get_appname(uri))
		mongoc_uri_set_appname(uri, appname);
	mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
	if (!pool) {
		snprintf(errstr, errstr_size, "cannot create a MongoDB client pool for the URI");
		mongoc_uri_destroy(uri);
		return NULL;
	}
	mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
	*uri_out = uri;
	return pool;
}

bool pl_mongo_is_duplicate_key(const bson_error_t *error)
{
	return error->code == 11000 || error->code == 11001;
}

bool pl_mongo_ping(mongoc_client_pool_t *pool, bson_error_t *error)
{
	mongoc_client_t *client = mongoc_client_pool_pop(pool);
	bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(client, "admin", cmd, NULL, NULL, error);
	bson_destroy(cmd);
	mongoc_client_pool_push(pool, client);
	return ok;
}
