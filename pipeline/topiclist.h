/* topiclist.h — the Kafka topics of the pipeline, as listed in scripts/topics.txt, embedded at
 * build time (scripts/embed-topics.sh generates the definitions). The ops CLI writes only into
 * these (a DLQ redrive's target must be one). Leaf module: data only, immutable, any thread. */
#ifndef PL_TOPICLIST_H
#define PL_TOPICLIST_H

#include <stddef.h>

extern const char *const pl_pipeline_topics[];
extern const size_t pl_pipeline_topic_count;

#endif
