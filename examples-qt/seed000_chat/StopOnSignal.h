// StopOnSignal.h — quits the Qt event loop on SIGINT/SIGTERM (self-pipe:
// the handler only writes a byte; a QSocketNotifier reads it on the loop).
#ifndef STOPONSIGNAL_H
#define STOPONSIGNAL_H

#include <QCoreApplication>
#include <QSocketNotifier>

#include <csignal>
#include <unistd.h>

inline int stopPipe[2] = {-1, -1};

inline void installStopOnSignal(QCoreApplication &app) {
    if (pipe(stopPipe) != 0) return;
    auto *n = new QSocketNotifier(stopPipe[0], QSocketNotifier::Read, &app);
    QObject::connect(n, &QSocketNotifier::activated, &app, [] { QCoreApplication::quit(); });
    auto handler = [](int) {
        char c = 1;
        ssize_t r = write(stopPipe[1], &c, 1);
        (void)r;
    };
    std::signal(SIGINT, handler);
    std::signal(SIGTERM, handler);
}

#endif
