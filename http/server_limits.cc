// Connection limits of the HTTP server: open connections per client address, and the canned
// 503 a connection refused at accept time gets.
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/write.hpp>
#include <sstream>

#include "http/api.h"
#include "http/server_impl.h"

namespace stickmeter::http {
namespace net = boost::asio;
namespace bhttp = boost::beast::http;

net::ip::address ClientKey(const net::ip::address& client) {
  if (client.is_v6() && client.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, client.to_v6());
  }
  return client;
}

std::string ConnectionRefusal(std::string_view message) {
  // Serialized from a real response, so the Content-Length is computed, never typed in.
  Response res = Api::Error(11, bhttp::status::service_unavailable, "unavailable", message);
  res.set(bhttp::field::retry_after, "1");
  res.keep_alive(false);
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  return out.str();
}

bool Server::Impl::ReserveClient(const net::ip::address& client) {
  const size_t limit = options.max_connections_per_client;
  std::lock_guard<std::mutex> lock(clients_mu);
  size_t& open = clients[ClientKey(client)];
  if (limit != 0 && open >= limit) return false;
  ++open;
  return true;
}

void Server::Impl::ReleaseClient(const net::ip::address& client) {
  std::lock_guard<std::mutex> lock(clients_mu);
  auto it = clients.find(ClientKey(client));
  if (it == clients.end()) return;
  if (--it->second == 0) clients.erase(it);
}

void Server::Impl::RefuseConnection(net::ip::tcp::socket& socket, std::string_view canned) {
  // Never blocks and never queues: the reply fits in an empty socket buffer.
  boost::system::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.write_some(net::buffer(canned), ignored);
  socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace stickmeter::http
