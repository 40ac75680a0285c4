// IClientEventListener.h — seed 000's listener interface. Every callback
// runs on the thread that owns the WebsocketServer (its Qt event loop).
#ifndef ICLIENTEVENTLISTENER_H
#define ICLIENTEVENTLISTENER_H

#include <string>

#include "IWebsocketClient.h"

class IClientEventListener {
public:
    virtual ~IClientEventListener() {}
    /// A client finished its handshake.
    virtual void onClientConnection(IWebsocketClient &client) = 0;
    /// A client's message (text as UTF-8; binary messages as their bytes).
    virtual void onMessageReceivedFromClient(IWebsocketClient &client, std::string message) = 0;
    /// The client is gone (once per onClientConnection, last).
    virtual void onClientClose(IWebsocketClient &client) = 0;
};

#endif
