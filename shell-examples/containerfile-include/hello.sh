#!/bin/sh
echo "hello, ${GREETING:-world} ($(cat /etc/hello/motd))"
