#!/usr/bin/env bash
# Headless Chromium for the tests that look at pages in a real browser (Debian's package). `make test` runs this;
# where it cannot install, the browser tests fail naming what is missing.
set -u
command -v chromium >/dev/null || command -v chromium-browser >/dev/null && exit 0
if command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "installing Debian's chromium for the browser tests (apt-get) ..."
  $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
    && exit 0
fi
echo "could not install chromium: install it (Debian: apt-get install chromium); the browser tests will fail saying so"
exit 0
