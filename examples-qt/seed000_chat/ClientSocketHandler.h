// ClientSocketHandler.h — seed 000's listener: a chat that relays every
// message to every connected client (the sender included).
#ifndef CLIENTSOCKETHANDLER_H
#define CLIENTSOCKETHANDLER_H

#include <set>
#include <string>

#include "IClientEventListener.h"

class ClientSocketHandler : public IClientEventListener {
public:
    void onClientConnection(IWebsocketClient &client) override;
    void onMessageReceivedFromClient(IWebsocketClient &client, std::string message) override;
    void onClientClose(IWebsocketClient &client) override;

private:
    std::set<IWebsocketClient *> clients;
};

#endif
