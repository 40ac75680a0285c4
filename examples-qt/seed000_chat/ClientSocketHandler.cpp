#include "ClientSocketHandler.h"

#include <iostream>

using namespace std;

void ClientSocketHandler::onClientConnection(IWebsocketClient &client) {
    cout << "New client connected : " << client.peer() << endl;
    clients.insert(&client);
}

void ClientSocketHandler::onMessageReceivedFromClient(IWebsocketClient &client, string message) {
    cout << "Client socket message received : " << message << endl;
    for (IWebsocketClient *c : clients) c->sendMessage("#" + to_string(client.id()) + ": " + message);
}

void ClientSocketHandler::onClientClose(IWebsocketClient &client) {
    cout << "Client socket closed : " << client.peer() << endl;
    clients.erase(&client);
}
