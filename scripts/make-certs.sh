#!/usr/bin/env bash
# Creates a local CA and certificates for localhost/127.0.0.1/::1 under
# OUTDIR (default build/certs), with every key form wsserver accepts, plus
# the bad material the TLS tests need. Nothing here is ever committed.
#   ca.pem ca.key                 local CA (trust ca.pem in a browser)
#   server.pem server.key         leaf for localhost, PKCS#8 ECDSA P-256
#   server-rsa.pem/.key           RSA, PKCS#1 ("RSA PRIVATE KEY")
#   server-sec1.pem/.key          ECDSA, SEC1 ("EC PRIVATE KEY")
#   server-enc.key                server.key as encrypted PKCS#8, password "secret"
#   server2.pem server2.key       a second leaf (CN=wsserver renewed), for reload tests
#   client.pem client.key         client certificate from ca (CN=alice)
#   other-ca.pem other-client.*   a client certificate from another CA
#   expired.pem expired.key       a leaf valid only in 2020 (from ca)
#   ed448.key                     a key type rustls cannot use
# Client certificates from ca that a verifying server refuses (TLS refusal tests):
#   client-v1.pem/.key            X.509 v1: `openssl x509 -req` with no -extfile
#   client-expired.pem/.key       valid only in 2020
#   client-future.pem/.key        valid only from 2090
#   client-serverauth.pem/.key    extendedKeyUsage=serverAuth only (no clientAuth)
set -euo pipefail
out=${1:-build/certs}
mkdir -p "$out"
cd "$out"
days=825
san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

ca() { # name subject
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
        -days 3650 -subj "$2" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # name key-file subject ca ext
    openssl req -new -key "$2" -out "$1.csr" -subj "$3" 2>/dev/null
    printf '%s\n' "$5" "basicConstraints=CA:FALSE" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -out "$1.pem" -days $days \
        -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=wsserver local CA/O=wsserver"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
leaf server server.key "/CN=localhost/O=wsserver" ca "$san"
openssl genrsa -traditional -out server-rsa.key 2048 2>/dev/null
leaf server-rsa server-rsa.key "/CN=localhost/O=wsserver rsa" ca "$san"
openssl ecparam -name prime256v1 -genkey -noout -out server-sec1.key 2>/dev/null
leaf server-sec1 server-sec1.key "/CN=localhost/O=wsserver sec1" ca "$san"
openssl pkcs8 -topk8 -v2 aes-256-cbc -in server.key -out server-enc.key -passout pass:secret 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server2.key 2>/dev/null
leaf server2 server2.key "/CN=localhost/O=wsserver renewed" ca "$san"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.key 2>/dev/null
leaf client client.key "/CN=alice/O=wsserver tests" ca "extendedKeyUsage=clientAuth"
ca other-ca "/CN=some other CA"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-client.key 2>/dev/null
leaf other-client other-client.key "/CN=mallory" other-ca "extendedKeyUsage=clientAuth"
openssl genpkey -algorithm ED448 -out ed448.key 2>/dev/null
# Explicit dates need `openssl ca` here (x509 -req takes only -days).
dated() { # name subject startdate enddate ext-line
    mkdir -p dated.db && : > dated.db/index.txt && echo 01 > dated.db/serial
    printf '%s\n' "[ca]" "default_ca=d" "[d]" "database=dated.db/index.txt" "new_certs_dir=dated.db" \
        "serial=dated.db/serial" "default_md=sha256" "policy=p" "copy_extensions=copy" "[p]" "commonName=supplied" > dated.cnf
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
    openssl req -new -key "$1.key" -subj "$2" -addext "$5" -out "$1.csr" 2>/dev/null
    openssl ca -batch -config dated.cnf -cert ca.pem -keyfile ca.key -startdate "$3" \
        -enddate "$4" -in "$1.csr" -out "$1.pem" -notext 2>/dev/null
    rm -rf dated.db dated.cnf "$1.csr"
}
dated expired "/CN=localhost" 20200101000000Z 20210101000000Z "$san"
dated client-expired "/CN=old-alice" 20200101000000Z 20210101000000Z "extendedKeyUsage=clientAuth"
dated client-future "/CN=future-alice" 20900101000000Z 20910101000000Z "extendedKeyUsage=clientAuth"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client-serverauth.key 2>/dev/null
leaf client-serverauth client-serverauth.key "/CN=server-as-client" ca "extendedKeyUsage=serverAuth"
# What many guides show, and OpenSSL-based servers accept: no -extfile, so X.509 v1.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client-v1.key 2>/dev/null
openssl req -new -key client-v1.key -subj "/CN=v1-alice" -out client-v1.csr 2>/dev/null
openssl x509 -req -in client-v1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days -out client-v1.pem 2>/dev/null
rm -f client-v1.csr
rm -f ./*.srl
echo "certificates in $(pwd)"
