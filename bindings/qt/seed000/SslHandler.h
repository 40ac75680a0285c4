// SslHandler.h — seed 000's helpers that read PEM files into Qt's types
// (names spelled as in the seed). A file that cannot be read gives a null
// certificate/key or an empty list; WebsocketServer::listen then fails.
#ifndef SSLHANDLER_H
#define SSLHANDLER_H

#include <QList>
#include <QSslCertificate>
#include <QSslKey>

class SslHandler {
public:
    /// The first certificate in a PEM file.
    static QSslCertificate retrieveCertFromFile(const char *filepath);
    /// A PEM private key (RSA, EC or DSA), decrypted with `passKey`
    /// (NULL or "" for an unencrypted key).
    static QSslKey retrieveKeyCertFile(const char *filepath, const char *passKey);
    /// Every certificate in a PEM file.
    static QList<QSslCertificate> retrieveveCaCertListFromFile(const char *filepath);
};

#endif
