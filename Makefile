# dronepipe build. `make` builds every binary; `make test` runs the whole suite (unit tests
# normal and under ASan+UBSan, fault tests on librdkafka's mock cluster, a short fuzz run,
# integration tests against a real Kafka, Redis and FerretDB started on their own ports).
# `make up` / `make down` run the embedded stack (scripts/stack.sh).

PKGS      := rdkafka hiredis libmongoc-1.0 libmicrohttpd jansson uuid libjwt
CC        ?= cc
WARN      := -Wall -Wextra -Werror -Wno-missing-field-initializers
CSTD      := -std=c11 -D_GNU_SOURCE
# pkg-config runs the first time a recipe needs its answer, not when make starts: `make up` on a
# bare machine installs the packages (the deps target) before anything is compiled, in the same
# make. (`lazy` evaluates once and keeps the result.)
lazy = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS = $(call lazy,PKG_CFLAGS,pkg-config --cflags $(PKGS) 2>/dev/null)
# (The libraries after the pkg-config answer stay outside the lazy variable: it is redefined to
# the bare answer on first use, and a later link would lose them.)
PKG_LIBS_PC = $(call lazy,PKG_LIBS_PC,pkg-config --libs $(PKGS) 2>/dev/null)
PKG_LIBS    = $(PKG_LIBS_PC) -lgnutls -lpthread -lm
CMOCKA_LIBS = $(call lazy,CMOCKA_LIBS,pkg-config --libs cmocka 2>/dev/null)
# Apache avro-c: the tests' reference encoder only (tests/oracle); the product does not link it.
AVRO_C_LIBS = $(call lazy,AVRO_C_LIBS,pkg-config --libs avro-c 2>/dev/null)

# B is the build folder; the sanitizer build uses build-san with SAN=1.
ifeq ($(SAN),1)
B      := build-san
OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN  := -fsanitize=address,undefined
else
B      := build
OPT    := -O2 -g
LDSAN  :=
endif
# Hardening, for every object and binary: stack canaries, position-independent executables
# (ASLR for the program itself), the relocation tables read-only after start-up with every
# symbol bound at load (full RELRO), and glibc's checked string/memory calls. FORTIFY needs an
# optimised build and is not compatible with AddressSanitizer (both replace the same calls), so
# the SAN=1 build leaves it out. scripts/check-hardening.sh (run by `make unit`) checks the
# built binaries for each of these.
HARDEN_CFLAGS := -fstack-protector-strong -fPIE $(if $(filter 1,$(SAN)),,-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) $(HARDEN_CFLAGS) $(PKG_CFLAGS) -Ipipeline -I$(B)/gen -MMD -MP
LDFLAGS_ALL := $(LDSAN) $(HARDEN_LDFLAGS)

PIPE_SRC := $(sort $(wildcard pipeline/*.c))
PIPE_OBJ := $(PIPE_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/schemas.o $(B)/obj/gen/topics.o
SCHEMAS  := $(sort $(wildcard schemas/*.avsc))
LIB      := $(B)/libpipeline.a

# Every folder producers/<x> or consumers/<x> with a main.c is one binary.
SVC_DIRS := $(patsubst %/main.c,%,$(wildcard producers/*/main.c consumers/*/main.c))
svc_bin   = $(B)/bin/$(if $(filter producers/replay,$(1)),dronepipe,dronepipe-$(notdir $(1)))
BINS     := $(foreach d,$(SVC_DIRS),$(call svc_bin,$(d)))

# Unit tests: tests/unit/<source path>/test_*.c, one binary each. A test of a service module
# links that service's objects except main.o.
UNIT_SRC := $(sort $(shell find tests/unit -name 'test_*.c' 2>/dev/null))
UNIT_BIN := $(UNIT_SRC:%.c=$(B)/%)
# Test programs used by the integration tests (tests/it/*.c with their own main).
IT_SRC   := $(sort $(wildcard tests/it/*.c))
IT_BIN   := $(IT_SRC:%.c=$(B)/%)

# Object files reached through pattern rules are not throw-away intermediates: keep them, so
# `make unit` after `make all` relinks nothing.
.SECONDARY:

.PHONY: all test unit unit-san fuzz it it-san deploy-check up down status demo clean clean-data fmt fmt-check bins deps help
all: $(BINS) $(UNIT_BIN) $(IT_BIN)
bins: $(BINS)

$(B)/gen/schemas.c: $(SCHEMAS) scripts/embed-schemas.sh
	@mkdir -p $(@D)
	scripts/embed-schemas.sh $@ $(SCHEMAS)

$(B)/obj/gen/schemas.o: $(B)/gen/schemas.c $(B)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# The pipeline's topics (scripts/topics.txt), the only ones `dronepipe dlq redrive` writes to.
$(B)/gen/topics.c: scripts/topics.txt scripts/embed-topics.sh
	@mkdir -p $(@D)
	scripts/embed-topics.sh $@ scripts/topics.txt

$(B)/obj/gen/topics.o: $(B)/gen/topics.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# The compile and link flags as text: every object depends on it, so changing a flag (a new
# hardening option, say) rebuilds what was built without it. Rewritten only when it differs.
FLAGS_TEXT = $(CSTD) $(WARN) $(OPT) $(HARDEN_CFLAGS) $(LDFLAGS_ALL)
$(B)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_TEXT)' | cmp -s - $@ || echo '$(FLAGS_TEXT)' >$@
.PHONY: FORCE
FORCE:

$(B)/obj/%.o: %.c $(B)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIB): $(PIPE_OBJ)
	@rm -f $@
	ar rcs $@ $^

define svc_rule
$(call svc_bin,$(1)): $(patsubst %.c,$(B)/obj/%.o,$(wildcard $(1)/*.c)) $(LIB)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $(LIB) $$(PKG_LIBS)
endef
$(foreach d,$(SVC_DIRS),$(eval $(call svc_rule,$(d))))

# tests/unit/<dir>/test_x.c links the non-main objects of <dir> (when <dir> is a service).
define unit_rule
$(B)/$(1:%.c=%): $(B)/obj/$(1:%.c=%.o) $(patsubst %.c,$(B)/obj/%.o,$(filter-out %/main.c,$(wildcard $(patsubst tests/unit/%,%,$(dir $(1)))*.c))) $(LIB)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $(LIB) $$(PKG_LIBS) $$(CMOCKA_LIBS)
endef
$(foreach t,$(UNIT_SRC),$(if $(findstring tests/unit/pipeline/,$(t)),,$(eval $(call unit_rule,$(t)))))
# pipeline tests link only the library; test_avro also avro-c, its reference encoder
$(B)/tests/unit/pipeline/test_avro: $(B)/obj/tests/unit/pipeline/test_avro.o \
		$(B)/obj/tests/oracle/avro_oracle.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(PKG_LIBS) $(AVRO_C_LIBS) $(CMOCKA_LIBS)
$(B)/tests/unit/pipeline/%: $(B)/obj/tests/unit/pipeline/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(PKG_LIBS) $(CMOCKA_LIBS)

# The store integration test exercises the package and scheduler store modules directly.
$(B)/tests/it/test_stores: $(B)/obj/tests/it/test_stores.o $(B)/obj/consumers/package/store.o \
		$(B)/obj/consumers/scheduler/fleet.o $(B)/obj/consumers/scheduler/fleet_plan.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(PKG_LIBS)

# The Redis store integration test exercises the delivery store module directly.
$(B)/tests/it/test_redis_store: $(B)/obj/tests/it/test_redis_store.o \
		$(B)/obj/consumers/delivery/store.o $(B)/obj/consumers/delivery/keys.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB) $(PKG_LIBS)

$(B)/tests/it/%: $(B)/obj/tests/it/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(LIB) $(PKG_LIBS) $(CMOCKA_LIBS)

# Object files of tests may include service headers.
$(B)/obj/tests/%.o: tests/%.c $(B)/.flags
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Iproducers -Iconsumers -Itests -c $< -o $@

deps:
	scripts/install-deps.sh

# The unit tests, then the hardening of every service binary (SAN=1: without FORTIFY).
unit: $(UNIT_BIN) $(BINS)
	@scripts/run-unit.sh $(B) $(UNIT_BIN)
	@scripts/check-hardening.sh $(if $(filter 1,$(SAN)),--no-fortify) $(BINS)

unit-san:
	$(MAKE) SAN=1 unit

fuzz: $(B)/gen/schemas.c
	@scripts/fuzz.sh

it: all
	@scripts/test-it.sh $(B)

# The integration tests with every service and test program built under ASan+UBSan (build-san):
# a sanitizer report in a service's log fails its test (scripts/test-it.sh).
it-san:
	$(MAKE) SAN=1 it

# Offline validation of compose/, k8s/ and the Dockerfile against schemas and the binaries'
# config tables (builds helm and a validator venv into .tools/ on first use).
deploy-check: bins
	@scripts/validate-deploy.sh

# README's `make up` on a bare Debian 12 (mmdebstrap + chroot, a clone of HEAD, its own ports),
# then one delivery to Scheduled: proves the install steps (scripts/test-fresh.sh; needs root).
# Not part of `make test`: run it after changing install-deps.sh, versions.env or the set-up.
.PHONY: test-fresh
test-fresh:
	@scripts/install-deps.sh test-fresh
	@scripts/test-fresh.sh

# The whole suite. Each part prints a closing "N passed, N failed" line.
test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-san
	$(MAKE) fuzz
	$(MAKE) deploy-check
	$(MAKE) it
	$(MAKE) it-san

up: deps
	$(MAKE) bins
	scripts/stack.sh up

down:
	scripts/stack.sh down

status:
	scripts/stack.sh status

# With `make up` running: one delivery flown to Completed, its status printed as it changes.
demo:
	scripts/demo.sh

clean-data:
	scripts/stack.sh clean-data

clean:
	rm -rf build build-san

fmt:
	clang-format -i $(shell git ls-files '*.c' '*.h' 2>/dev/null)

fmt-check:
	clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h' 2>/dev/null)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ---- benchmarks (never part of `make test`; they report, never fail on a number) --------------
# Each bench/<name>.c has its own main and becomes build/bench/<name>, linking libpipeline.
# `make bench` runs bench/run.sh: an isolated stack (bench/work/, own ports), the scenarios, and
# the report in bench/results/.
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(patsubst bench/%.c,build/bench/%,$(BENCH_SRC))

.PHONY: bench bench-bins
bench-bins: $(BENCH_BIN)

build/bench/%: build/obj/bench/%.o build/libpipeline.a
	@mkdir -p $(@D)
	$(CC) $(HARDEN_LDFLAGS) -o $@ $< build/libpipeline.a $(PKG_LIBS)

bench: deps
	$(MAKE) bins bench-bins
	bench/run.sh
