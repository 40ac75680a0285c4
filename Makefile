# wsserver: `make` builds the library and the C examples, `make test` runs
# every test, `make demo` runs the chat server, `make bench` the benchmark
# (ending with its instruction-count row), `make bench-instructions` that row
# alone (callgrind: user-space instructions per echoed 16 B message, wsserver
# and its peers, a few minutes),
# `make autobahn` all of Autobahn|Testsuite.
# `make fuzz` the fuzz targets.
CARGO    ?= cargo
CC       ?= gcc
PREFIX   ?= /usr/local
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR    := $(firstword $(subst ., ,$(VERSION)))
RELEASE  := target/release
SO       := $(RELEASE)/libwsserver.so
A        := $(RELEASE)/libwsserver.a
CFLAGS   ?= -O2 -g
comma    := ,
WARN     := -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L
EXAMPLES := echo_server chat_server tls_echo_server poll_server workflows_server autobahn_server
EXAMPLE_BINS := $(EXAMPLES:%=build/examples/%)
RUST_SRC := $(shell find src -name '*.rs') Cargo.toml build.rs cbindgen.toml

.PHONY: all lib lib-checked examples examples-cpp header certs deps install install-qt test demo bench bench-quick bench-instructions autobahn fuzz clean

all: lib examples

lib: $(SO)

$(SO) $(A) &: $(RUST_SRC)
	$(CARGO) build --release --lib
	@touch $(SO) $(A)
	@ln -sf libwsserver.so $(RELEASE)/libwsserver.so.$(MAJOR)

# The library with debug assertions and overflow checks (cargo profile
# "checked", in target/checked/), which the Qt and Python package tests load.
lib-checked:
	$(CARGO) build --profile checked --lib
	@ln -sf libwsserver.so target/checked/libwsserver.so.$(MAJOR)

examples: $(EXAMPLE_BINS)

build/examples/%: examples-c/%.c examples-c/example_common.h examples-c/example_web.h include/wsserver.h $(SO)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Iinclude -o $@ $< -L$(RELEASE) -lwsserver -Wl,-rpath,$(CURDIR)/$(RELEASE) -lpthread

# The C++ examples on bindings/cpp (asio_echo needs Boost headers: libboost-dev).
CXX      ?= g++
examples-cpp: build/examples-cpp/echo_server build/examples-cpp/seed004_chat build/examples-cpp/asio_echo

build/examples-cpp/%: examples-cpp/%.cpp bindings/cpp/wsserver.hpp bindings/cpp/websocket.hpp include/wsserver.h $(SO)
	@mkdir -p $(dir $@)
	$(CXX) -O2 -g -std=c++17 -Wall -Wextra -Werror -Iinclude -Ibindings/cpp -o $@ $< -L$(RELEASE) -lwsserver -Wl,-rpath,$(CURDIR)/$(RELEASE) -lpthread

# Regenerates the committed header from src/ffi/ (a test fails when stale).
header:
	WSSERVER_UPDATE_HEADER=1 $(CARGO) build --release --lib

# A local CA and a localhost certificate under build/certs (README: trusting it).
certs:
	bash scripts/make-certs.sh build/certs

# What `make install` puts in PREFIX (see README "Installing"):
#   lib/libwsserver.so.$(VERSION) (+ .so.$(MAJOR), .so links), lib/libwsserver.a
#       stripped of debug info (STRIP_DEBUG=0 keeps it); the shared library's
#       debug info goes to lib/.debug/libwsserver.so.$(VERSION).debug, named by
#       its .gnu_debuglink, where gdb looks without being told;
#   include/wsserver.h, include/wsserver/ (C++ headers, example_common.h);
#   lib/pkgconfig/wsserver.pc: its Libs carry -Wl,-rpath,LIBDIR unless PREFIX
#       is /usr (RPATH=0 leaves it out), so programs built with it start
#       without LD_LIBRARY_PATH; lib/cmake/wsserver/ (find_package);
#   share/wsserver/examples/{c,cpp}/, which build alone with pkg-config.
# Installing into /usr/local (or /usr) as root also runs ldconfig.
STRIP_DEBUG ?= 1
RPATH       ?= $(if $(filter /usr /usr/,$(PREFIX)),0,1)
STRIPPED    := build/stripped
DEBUGFILE   := libwsserver.so.$(VERSION).debug

# The libraries as installed: debug info moved out of the .so into its own
# (compressed) file linked by name and CRC, and taken out of the .a together
# with the LLVM bitcode that Rust's std objects carry (ld never reads it).
$(STRIPPED)/libwsserver.so $(STRIPPED)/$(DEBUGFILE) $(STRIPPED)/libwsserver.a &: $(SO) $(A)
	@mkdir -p $(STRIPPED)
	objcopy --only-keep-debug --compress-debug-sections=zlib $(SO) $(STRIPPED)/$(DEBUGFILE)
	cd $(STRIPPED) && objcopy --strip-debug --add-gnu-debuglink=$(DEBUGFILE) $(CURDIR)/$(SO) libwsserver.so
	strip --strip-debug -R .llvmbc -R .llvmcmd -o $(STRIPPED)/libwsserver.a $(A)

ifeq ($(STRIP_DEBUG),1)
INSTALL_SO := $(STRIPPED)/libwsserver.so
INSTALL_A  := $(STRIPPED)/libwsserver.a
else
INSTALL_SO := $(SO)
INSTALL_A  := $(A)
endif

install: lib $(INSTALL_SO) $(INSTALL_A)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/wsserver.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(INSTALL_SO) $(DESTDIR)$(PREFIX)/lib/libwsserver.so.$(VERSION)
	ln -sf libwsserver.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libwsserver.so.$(MAJOR)
	ln -sf libwsserver.so.$(MAJOR) $(DESTDIR)$(PREFIX)/lib/libwsserver.so
	install -m 644 $(INSTALL_A) $(DESTDIR)$(PREFIX)/lib/libwsserver.a
	if [ "$(STRIP_DEBUG)" = 1 ]; then install -d $(DESTDIR)$(PREFIX)/lib/.debug && \
	    install -m 644 $(STRIPPED)/$(DEBUGFILE) $(DESTDIR)$(PREFIX)/lib/.debug/; fi
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@RPATH@|$(if $(filter 1,$(RPATH)),-Wl$(comma)-rpath$(comma)$${libdir} ,)|' \
	    wsserver.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/wsserver.pc
	install -d $(DESTDIR)$(PREFIX)/include/wsserver $(DESTDIR)$(PREFIX)/lib/cmake/wsserver
	install -m 644 bindings/cpp/wsserver.hpp bindings/cpp/websocket.hpp examples-c/example_common.h examples-c/example_web.h \
	    $(DESTDIR)$(PREFIX)/include/wsserver/
	for f in wsserver-config wsserver-config-version; do sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' \
	    -e 's|@MINOR@|$(word 2,$(subst ., ,$(VERSION)))|g' \
	    bindings/cpp/cmake/$$f.cmake.in > $(DESTDIR)$(PREFIX)/lib/cmake/wsserver/$$f.cmake; done
	install -d $(DESTDIR)$(PREFIX)/share/wsserver/examples/c $(DESTDIR)$(PREFIX)/share/wsserver/examples/cpp
	install -m 644 $(EXAMPLES:%=examples-c/%.c) examples-c/example_common.h examples-c/example_web.h $(DESTDIR)$(PREFIX)/share/wsserver/examples/c/
	install -m 644 examples-cpp/*.cpp $(DESTDIR)$(PREFIX)/share/wsserver/examples/cpp/
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && { [ "$(PREFIX)" = /usr/local ] || [ "$(PREFIX)" = /usr ]; }; then \
	    ldconfig || true; fi

# The Qt binding's CMake package (lib/cmake/wsserver_qt), for each Qt found; after install.
install-qt: install
	for v in 5 6; do cmake -S bindings/qt -B build/install-qt/qt$$v -DQT_MAJOR_VERSION=$$v -DWSSERVER_QT_INSTALLED_C=ON \
	    -Dwsserver_DIR=$(DESTDIR)$(PREFIX)/lib/cmake/wsserver -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DCMAKE_BUILD_TYPE=Release >/dev/null || continue; \
	    cmake --build build/install-qt/qt$$v -j2 && DESTDIR=$(DESTDIR) cmake --install build/install-qt/qt$$v || exit 1; done

demo: all
	build/examples/chat_server 127.0.0.1 8080

# What the tests need on a fresh machine (apt, pip and npm packages).
deps:
	bash scripts/install-deps.sh

test: deps all
	bash tests/run-all.sh

bench: all
	bash bench/run.sh

# Autobahn|Testsuite: all 517 cases against build/examples/autobahn_server
# (`make test` runs cases 1-10 and the deflate subset); the HTML report is
# build/autobahn/full/index.html. Installs wstest (build/autobahn-venv) first.
autobahn: all
	bash tests/autobahn/install.sh
	python3 tests/autobahn/run.py full

bench-quick: all
	bash bench/run.sh --quick

# The instruction-count row: each server twice under valgrind --tool=callgrind (10
# clients x 200, then x 1,200 echoes), the difference per message; see
# bench/README.md "Instructions per message".
bench-instructions: all
	bash bench/run.sh --instructions

# Every cargo-fuzz target (fuzz/) for FUZZ_SECONDS each, two at a time; a
# crash fails and prints its reproducer (README "Fuzzing"). `make test` runs
# them for 20 s each. Needs cargo-fuzz: `make deps` installs it.
FUZZ_SECONDS ?= 120
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

clean:
	$(CARGO) clean
	rm -rf build fuzz/target
