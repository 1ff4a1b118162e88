/* err.c — names and retry classification of pl_err_t. Owns nothing. */
#include "err.h"

static const char *const names[PL_ERR__COUNT] = {
    [PL_OK] = "ok",
    [PL_ERR_INVALID] = "invalid",
    [PL_ERR_DECODE] = "decode",
    [PL_ERR_SCHEMA] = "schema",
    [PL_ERR_REJECTED] = "rejected",
    [PL_ERR_NOT_FOUND] = "not_found",
    [PL_ERR_TRANSIENT] = "transient",
    [PL_ERR_TIMEOUT] = "timeout",
    [PL_ERR_QUEUE_FULL] = "queue_full",
    [PL_ERR_CONFIG] = "config",
    [PL_ERR_IO] = "io",
    [PL_ERR_TOO_LARGE] = "too_large",
    [PL_ERR_FATAL] = "fatal",
};

const char *pl_err_str(pl_err_t err)
{
	if ((unsigned)err >= PL_ERR__COUNT)
		return "unknown";
	return names[err];
}

bool pl_err_retryable(pl_err_t err)
{
	return err == PL_ERR_TRANSIENT || err == PL_ERR_TIMEOUT || err == PL_ERR_QUEUE_FULL ||
	       err == PL_ERR_IO;
}
