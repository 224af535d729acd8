#!/bin/bash
# One pod of deploy/k8s in a private mount namespace; run by tests/deploy/test_k8s_pod.py
# (read its docstring), which replaces the @NAMES@ and sets the environment: the
# ConfigMap's settings and PY (python).
set -euo pipefail
# A container runtime starts processes with umask 022; the caller's may be 077 (CI's is),
# which would leave the copied module, passwd and SoftHSM's config unreadable to uid 10001.
umask 022
# Everything below remounts / read-only: only ever in a mount namespace of its own,
# made by `unshare --mount` for this shell alone (its parent's is another).
here=$(readlink /proc/self/ns/mnt)
parent=$(readlink "/proc/$PPID/ns/mnt")
if [ -z "$here" ] || [ -z "$parent" ] || [ "$here" = "$parent" ]; then
  echo "refusing: not in a new mount namespace (run through unshare --mount)"; exit 99
fi
mount --make-rprivate /
# The image's user (useradd in deploy/Containerfile).
cp /etc/passwd /dev/shm/h7pod-passwd && echo 'hoviyat:x:10001:10001::/var/lib/hoviyat:/usr/sbin/nologin' >> /dev/shm/h7pod-passwd
cp /etc/group /dev/shm/h7pod-group && echo 'hoviyat:x:10001:' >> /dev/shm/h7pod-group
mount --bind /dev/shm/h7pod-passwd /etc/passwd && mount --bind /dev/shm/h7pod-group /etc/group
# emptyDir with fsGroup 10001: root's, group 10001, setgid, world-writable.
mount -t tmpfs -o mode=2777 tmpfs /var/lib/hoviyat && chgrp 10001 /var/lib/hoviyat
# Secret volumes, defaultMode 0440 with fsGroup: root:10001, read-only.
mount -t tmpfs -o mode=0755 tmpfs /etc/hoviyat/secrets
$PY -c "import json,secrets;print(json.dumps({n: secrets.token_hex(32) for n in ('client_secret_key','subject_pepper','key_encryption_key')}))" > /etc/hoviyat/secrets/secrets.json
sha256sum /etc/hoviyat/secrets/secrets.json > /dev/shm/h7pod-secrets.sum
chown root:10001 /etc/hoviyat/secrets/secrets.json && chmod 0440 /etc/hoviyat/secrets/secrets.json
mount -o remount,ro /etc/hoviyat/secrets
mount -t tmpfs -o mode=0755 tmpfs /etc/hoviyat/pkcs11
echo 246810 > /etc/hoviyat/pkcs11/pin && chown root:10001 /etc/hoviyat/pkcs11/pin && chmod 0440 /etc/hoviyat/pkcs11/pin
mount -o remount,ro /etc/hoviyat/pkcs11
# The init container's copy of the vendor module.
mount -t tmpfs -o mode=0755 tmpfs /opt/pkcs11
cp @SOFTHSM@ "$HOVIYAT_CA_PKCS11_MODULE"
mount -o remount,ro /opt/pkcs11
# /tmp as a tmpfs, python and the checkout visible to uid 10001:
@EXPOSE@
mount -o remount,bind,ro /

AS="setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all"
HOVIYAT="$PY -m idp.cli"
cd /var/lib/hoviyat
export SOFTHSM2_CONF=/var/lib/hoviyat/softhsm2.conf PYTHONDONTWRITEBYTECODE=1
printf 'directories.tokendir = /var/lib/hoviyat/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' > $SOFTHSM2_CONF
$AS mkdir -m 0700 /var/lib/hoviyat/tokens
$AS softhsm2-util --init-token --free --label "$HOVIYAT_CA_PKCS11_TOKEN_LABEL" --pin "$(cat /etc/hoviyat/pkcs11/pin)" --so-pin 13579 >/dev/null
$AS touch /etc/hoviyat-written 2>/dev/null && echo "RESULT root_writable true" || echo "RESULT root_writable false"

$AS $HOVIYAT registry seed --persons 200 --entities 20 --path /var/lib/hoviyat/registry.db --json >/dev/null
$AS $HOVIYAT registry serve --host 127.0.0.1 --port @REGISTRY_PORT@ --no-control --path /var/lib/hoviyat/registry.db >/dev/null 2>&1 &
REGISTRY=$!
trap 'kill $REGISTRY 2>/dev/null || true' EXIT

echo "RESULT init $($AS $HOVIYAT init --json | tr -d '\n')"
echo "RESULT init_again $($AS $HOVIYAT init --json | tr -d '\n')"
sha256sum --check --status /dev/shm/h7pod-secrets.sum && echo "RESULT secrets_unchanged true"
echo "RESULT ca_init $($AS $HOVIYAT ca init --json | tr -d '\n')"

$AS $HOVIYAT serve --host 127.0.0.1 --port @SERVE_PORT@ --workers 2 >/tmp/serve.log 2>&1 &
SERVE=$!
trap 'kill $SERVE $REGISTRY 2>/dev/null || true' EXIT
$PY - <<'PY'
import json, time, urllib.error, urllib.request
deadline, answer = time.monotonic() + 120, None
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen("http://127.0.0.1:@SERVE_PORT@/readyz", timeout=3) as response:
            answer = [response.status, json.load(response)]
            break
    except urllib.error.HTTPError as error:
        answer = [error.code, None]
    except OSError:
        pass
    time.sleep(0.3)
print("RESULT readyz " + json.dumps(answer))
PY
echo "RESULT data_dir $(stat -c '%a %u' "$HOVIYAT_DATA_DIR")"
start=$(date +%s%N); kill -TERM $SERVE; wait $SERVE || true
echo "RESULT stop_ms $(( ($(date +%s%N) - start) / 1000000 ))"
HOVIYAT_DATA_DIR=/var/lib/hoviyat timeout 60 $AS $HOVIYAT serve --host 127.0.0.1 --port @BAD_PORT@ >/tmp/bad.log 2>&1 \
  && echo "RESULT data_root_refused false" \
  || echo "RESULT data_root_refused $(grep -c 'PermissionError' /tmp/bad.log)"
