//! Listening sockets whose accept queue takes a burst of connections: a thousand workers
//! re-attaching at once, or a fetch job opening hundreds of connections to the site simulator.
//!
//! Bound through the runtime's default the queue held 128 connections; the rest of a burst had
//! its SYNs dropped and retried a second later (the first shard of a 512-connection fetch job
//! took 1.2 s instead of 0.1 s).

use std::io;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues before `accept`; it caps this at `net.core.somaxconn`.
pub const BACKLOG: u32 = 4096;

/// Listens on `address` (`host:port`, as `TcpListener::bind` takes) with a [`BACKLOG`]-deep
/// accept queue, trying each address the host resolves to in turn.
///
/// # Errors
/// The address does not resolve, or no resolved address can be bound.
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for socket_address in tokio::net::lookup_host(address).await? {
        let socket = if socket_address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As the standard library's bind does: a restarted server can reuse its port at once.
        socket.set_reuseaddr(true)?;
        match socket
            .bind(socket_address)
            .and_then(|()| socket.listen(BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_beyond_the_old_queue_is_accepted_without_drops() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // 300 connections complete their handshake while nothing accepts. With a queue of 128
        // the kernel drops the SYNs beyond it, and as nothing frees the queue their retries
        // fail too: those connects would never finish.
        let connects: Vec<_> = (0..300)
            .map(|_| {
                tokio::spawn(tokio::time::timeout(
                    std::time::Duration::from_secs(20),
                    tokio::net::TcpStream::connect(address),
                ))
            })
            .collect();
        let mut streams = Vec::new();
        for connect in connects {
            let connected = connect.await.unwrap();
            streams.push(connected.expect("connect finished").unwrap());
        }
        for _ in 0..300 {
            listener.accept().await.unwrap();
        }
    }

    #[tokio::test]
    async fn an_unresolvable_or_taken_address_is_an_error() {
        let taken = bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap().to_string();
        assert!(bind(&address).await.is_err());
        assert!(bind("no-such-host.invalid:80").await.is_err());
    }
}
