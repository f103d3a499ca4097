# training: in-database training of face and landmark recognition models.
# Build with PGXS:  make && make install   (PG_CONFIG=... to pick a server)

EXTENSION  = training
EXTVERSION = 0.8.0

MODULE_big = training

# Objects that include PostgreSQL headers (SQL API glue, worker, store).
OBJS = src/training.o src/guard.o src/validate.o src/json.o src/render.o src/counts.o src/deep.o \
	src/guc.o src/shmem.o src/hooks.o src/launcher.o src/worker.o src/store.o src/recognize.o src/config.o src/extract.o src/embeddings.o \
	src/locks.o

# The pure core (src/core): no PostgreSQL headers, no calls into the server. Built once into
# src/core/libtrcore.a (position-independent, as it is linked into training.so) and linked by
# the extension, the unit tests, the benches and the tools. Fuzz targets compile CORE_SRCS
# themselves, with the sanitizers.
CORE_SRCS = $(addprefix src/core/,interrupt.c decode.c quality.c trfeatures.c trainloop.c \
	model.c pipeline.c trconfig.c netcache.c deepfeat.c blas.c \
	measure.c dataquality.c nn/weights.c nn/ops.c nn/facenet.c nn/detector.c nn/agegender.c nn/landmarks.c nn/face.c)
CORE_OBJS = $(CORE_SRCS:.c=.o)
CORE_HDRS = $(wildcard src/core/*.h src/core/nn/*.h)
CORE_LIB = src/core/libtrcore.a

# The install script is assembled from sql/install/*.sql in name order; databases made by an
# earlier release move up with the upgrade scripts sql/training--FROM--TO.sql (one per catalog change).
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard sql/$(EXTENSION)--*--*.sql)
EXTRA_CLEAN = $(CORE_OBJS) $(CORE_LIB) output_iso sql/$(EXTENSION)--$(EXTVERSION).sql test/unit/run_unit test/deep/golden bench/accuracy tools/training-import tools/training-worker tools/gen-demo bench/faces bench/gflops

# Libraries from pkg-config (OpenBLAS's headers live in a flavour directory on Debian); the
# plain names when pkg-config does not know them.
PKG_CONFIG ?= pkg-config
LIB_PKGS = openblas libjpeg libpng libcjson
LIB_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIB_PKGS) 2>/dev/null)
LIB_LIBS := $(or $(shell $(PKG_CONFIG) --libs $(LIB_PKGS) 2>/dev/null),-lopenblas -ljpeg -lpng -lcjson) -lm

# Warnings; CI makes them errors (make WERROR=-Werror, scripts/test-all.sh), the shipped build does not.
WARN = -Wall -Wextra
WERROR ?=

# Server headers as system headers, so -Wextra judges only our code.
PG_CPPFLAGS = -DTR_EXTVERSION='"$(EXTVERSION)"' -isystem $(shell $(PG_CONFIG) --includedir-server) \
	-Isrc/core $(LIB_CFLAGS)
PG_CFLAGS = $(WARN) $(WERROR) -Wno-declaration-after-statement -std=gnu11
SHLIB_LINK = $(CORE_LIB) $(LIB_LIBS) -luuid
# The core library's objects, and standalone programs (unit tests, benches, tools) against it.
CORE_CFLAGS = -g -O3 -ffp-contract=off -fPIC -fno-strict-aliasing -fwrapv $(WARN) $(WERROR) -std=gnu11 -I src/core $(LIB_CFLAGS)
CORE_CC = $(CC) -g $(WARN) $(WERROR) -std=gnu11 -I src/core $(LIB_CFLAGS)
CORE_LINK = $(CORE_LIB) $(LIB_LIBS)

# pg_regress suites (sql/NAME.sql -> expected/NAME.out). make installcheck needs only the
# extension installed in the server. The suites that need the background worker
# (shared_preload_libraries = 'training') run with make installcheck-worker, with the isolation
# specs (test/isolation/specs/NAME.spec -> test/isolation/expected/NAME.out); the one that needs
# the face networks (make models) with make installcheck-deep.
REGRESS = foundation access postgrest
REGRESS_OPTS = --load-extension=$(EXTENSION)
REGRESS_WORKER = pipeline lifecycle searchpath features
REGRESS_DEEP = deep
# first_visit runs first: the others act as workers with made-up pids, which a first recovery would requeue.
ISOLATION_SPECS = first_visit $(filter-out first_visit,$(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_RUN_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=$(EXTENSION) \
	--dbname=isolation_regression

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

src/core/%.o: src/core/%.c $(CORE_HDRS)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<
$(CORE_LIB): $(CORE_OBJS)
	rm -f $@
	$(AR) crs $@ $^
$(shlib): $(CORE_LIB)
.PHONY: core
core: $(CORE_LIB)
# PGXS tracks no header dependencies: the server objects are rebuilt when any header changes.
$(OBJS): $(wildcard src/*.h) $(CORE_HDRS)
# The library's version (TR_EXTVERSION) comes from this file.
src/store.o: Makefile

.PHONY: installcheck-worker installcheck-deep
installcheck-worker:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS_WORKER)
	$(pg_isolation_regress_installcheck) $(ISOLATION_RUN_OPTS) $(ISOLATION_SPECS)
installcheck-deep:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS_DEEP)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(sort $(wildcard sql/install/*.sql))
	cat $^ > $@

# Unit tests of the pure core (no server needed).
UNIT_SRCS = $(sort $(wildcard test/unit/*.c))
test/unit/run_unit: $(UNIT_SRCS) $(wildcard test/unit/*.h) $(CORE_LIB)
	$(CORE_CC) -O1 -o $@ $(UNIT_SRCS) $(CORE_LINK)

.PHONY: unit
unit: test/unit/run_unit
	./test/unit/run_unit

# Face networks: weights from npm @vladmandic/face-api, pinned and checksummed
# (models/SHA256SUMS); installed to $(sharedir)/extension/training_models,
# the default of training.model_path.
FACEAPI_VERSION = 1.7.15
MODEL_FILES = $(shell awk '{print $$2}' models/SHA256SUMS)

.PHONY: models install-models
models:
	scripts/fetch-models.sh $(FACEAPI_VERSION) models

install: install-models
install-models:
	@if [ -f models/face_recognition_model.bin ]; then \
		$(MKDIR_P) '$(DESTDIR)$(datadir)/extension/training_models' && \
		$(INSTALL_DATA) $(addprefix models/,$(MODEL_FILES)) '$(DESTDIR)$(datadir)/extension/training_models/'; \
	else echo "note: no face models in models/; run 'make models' before 'make install'"; fi

# Golden test of src/nn against face-api's JavaScript (test/deep/run.sh).
test/deep/golden: test/deep/golden.c $(CORE_LIB)
	$(CORE_CC) -O2 -o $@ test/deep/golden.c $(CORE_LINK)

# Benchmarks of the pure core (no server needed).
bench/accuracy: bench/accuracy.c $(CORE_LIB)
	$(CORE_CC) -O2 -o $@ bench/accuracy.c $(CORE_LINK)

# Face networks benchmark (bench/faces.sh).
bench/faces: bench/faces.c $(CORE_LIB)
	$(CORE_CC) -O2 -pthread -o $@ bench/faces.c $(CORE_LINK)

# Perl TAP tests against temporary clusters: make prove_installcheck PROVE_TESTS='test/tap/*.pl'
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# Client tools (libpq; no server headers).
tools/training-import: tools/training-import.c
	$(CC) -O2 -g $(WARN) $(WERROR) -std=gnu11 -I$(shell $(PG_CONFIG) --includedir) \
		-o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq
# training-worker: runs trainings outside the server (libpq + the core library), installed beside
# the server's programs ($(bindir)), so the TAP tests and a PATH with bindir find it.
tools/training-worker: tools/training-worker.c $(CORE_LIB)
	$(CORE_CC) -O2 -I$(shell $(PG_CONFIG) --includedir) \
		-DDEFAULT_MODEL_DIR='"$(datadir)/extension/training_models"' -o $@ tools/training-worker.c \
		$(CORE_LINK) -L$(shell $(PG_CONFIG) --libdir) -lpq -lm
all: tools/training-worker
install: install-training-worker
.PHONY: install-training-worker
install-training-worker: tools/training-worker
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) tools/training-worker '$(DESTDIR)$(bindir)/training-worker'
tools/gen-demo: tools/gen-demo.c
	$(CC) -O2 -g $(WARN) $(WERROR) -std=gnu11 -o $@ $< -lm
all: tools/training-import
bench/gflops: bench/gflops.c $(CORE_LIB)
	$(CORE_CC) -O2 -o $@ bench/gflops.c $(CORE_LINK)

# Fuzzing (libFuzzer, clang): make fuzz [FUZZ_SECONDS=60] builds test/fuzz/fuzz_{decode,model,weights}
# against the pure core with ASan and UBSan, writes the seed corpus (test/fuzz/make-corpus.sh)
# into test/fuzz/corpus-*/ and runs each target for FUZZ_SECONDS; fails on any crash, leak or
# sanitizer report (reproducer in test/fuzz/artifacts/).
CC_FUZZ ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = decode model weights
FUZZ_BINS = $(addprefix test/fuzz/fuzz_,$(FUZZ_TARGETS))
FUZZ_CFLAGS = -g -O1 -std=gnu11 -Wall -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I src/core $(LIB_CFLAGS)
FUZZ_LIBS = $(LIB_LIBS)
EXTRA_CLEAN += $(FUZZ_BINS) test/fuzz/artifacts

# Their own instrumented compile of the core's sources (not the library).
test/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(CORE_SRCS) $(CORE_HDRS)
	$(CC_FUZZ) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRCS) $(FUZZ_LIBS)

.PHONY: fuzz fuzz-build fuzz-corpus
fuzz-build: $(FUZZ_BINS)
fuzz-corpus:
	CORE_SRCS='$(CORE_SRCS)' test/fuzz/make-corpus.sh test/fuzz
fuzz: fuzz-build fuzz-corpus
	@mkdir -p test/fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		dict=; [ -f test/fuzz/$$t.dict ] && dict=-dict=test/fuzz/$$t.dict; \
		./test/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
			-artifact_prefix=test/fuzz/artifacts/fuzz_$$t- $$dict test/fuzz/corpus-$$t \
			> test/fuzz/artifacts/fuzz_$$t.log 2>&1 \
		|| { tail -n 60 test/fuzz/artifacts/fuzz_$$t.log; echo "fuzz_$$t FAILED"; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' test/fuzz/artifacts/fuzz_$$t.log; \
	done
