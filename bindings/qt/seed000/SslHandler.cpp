#include "SslHandler.h"

#include <QFile>

namespace {
QByteArray readAll(const char *path) {
    QFile f(QString::fromLocal8Bit(path ? path : ""));
    if (!f.open(QIODevice::ReadOnly)) return QByteArray();
    return f.readAll();
}
} // namespace

QSslCertificate SslHandler::retrieveCertFromFile(const char *filepath) {
    const QList<QSslCertificate> certs = QSslCertificate::fromData(readAll(filepath), QSsl::Pem);
    return certs.isEmpty() ? QSslCertificate() : certs.first();
}

QSslKey SslHandler::retrieveKeyCertFile(const char *filepath, const char *passKey) {
    const QByteArray pem = readAll(filepath);
    const QByteArray pass(passKey ? passKey : "");
    for (QSsl::KeyAlgorithm alg : {QSsl::Rsa, QSsl::Ec, QSsl::Dsa}) {
        QSslKey key(pem, alg, QSsl::Pem, QSsl::PrivateKey, pass);
        if (!key.isNull()) return key;
    }
    return QSslKey();
}

QList<QSslCertificate> SslHandler::retrieveveCaCertListFromFile(const char *filepath) {
    return QSslCertificate::fromData(readAll(filepath), QSsl::Pem);
}
