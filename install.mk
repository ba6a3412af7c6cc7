# SPDX-License-Identifier: GPL-2.0-only
# install.mk - `make install`: libkfork (shared, static, headers, pkg-config), the CLI, kforkd and its systemd unit, guest files, man pages.
#
#   make install [PREFIX=/usr/local] [DESTDIR=/staging] [LIBDIR=...] [MANDIR=...]
#
# The installed kfork finds its guest kernel and initramfs in ../lib/kfork/
# relative to its own binary, so a staged tree (DESTDIR) works as installed.
# PREFIX=/usr/local needs `ldconfig` afterwards for the shared library.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
# systemd reads units from /usr/local/lib/systemd/system too; PREFIX=/usr: /usr/lib/systemd/system.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
KFORK_DATADIR := $(PREFIX)/lib/kfork
# Where Debian's python3 looks: /usr/lib/python3/dist-packages for the system,
# /usr/local/lib/python3.X/dist-packages otherwise (PYTHONDIR= overrides).
# Only the sources: Python compiles them itself, nothing else of python/ ships.
PY_VER = $(shell python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(PREFIX)/lib/python$(PY_VER)/dist-packages)
PY_SRCS := $(wildcard python/kfork/*.py)

MAN_PAGES := $(wildcard man/*.[1-8])
INSTALL_DATA := $(B)/guest/vmlinux $(B)/guest/minimal.cpio.gz $(B)/guest/python.cpio.gz \
	$(B)/tests/tiny.bin

.PHONY: install
install: $(B)/kfork $(B)/kforkd packaging/kforkd.service.in $(PY_SRCS) $(KF_SO) $(B)/lib/libkfork.a $(INSTALL_DATA) userspace/lib/kfork.pc.in
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/linux \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(KFORK_DATADIR)
	install -m 755 $(B)/kfork $(DESTDIR)$(BINDIR)/kfork
	install -m 755 $(B)/kforkd $(DESTDIR)$(BINDIR)/kforkd
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|' packaging/kforkd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/kforkd.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/kforkd.service
	install -m 755 $(KF_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(KF_SO)) $(DESTDIR)$(LIBDIR)/libkfork.so.$(KF_SONAME_MAJOR)
	ln -sf libkfork.so.$(KF_SONAME_MAJOR) $(DESTDIR)$(LIBDIR)/libkfork.so
	install -m 644 $(B)/lib/libkfork.a $(DESTDIR)$(LIBDIR)/libkfork.a
	install -m 644 userspace/include/kfork.h $(DESTDIR)$(INCLUDEDIR)/kfork.h
	install -m 644 kmod/uapi/kfork.h $(DESTDIR)$(INCLUDEDIR)/linux/kfork.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(KF_LIB_VERSION)|' userspace/lib/kfork.pc.in \
		>$(DESTDIR)$(PKGCONFIGDIR)/kfork.pc
	install -m 644 $(INSTALL_DATA) $(DESTDIR)$(KFORK_DATADIR)/
	$(foreach m,$(MAN_PAGES),install -D -m 644 $(m) \
		$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)) &&) true
	install -d $(DESTDIR)$(PYTHONDIR)/kfork
	install -m 644 $(PY_SRCS) $(DESTDIR)$(PYTHONDIR)/kfork/
