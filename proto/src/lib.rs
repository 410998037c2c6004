//! concur.v1 wire types (generated from `concur.proto` at build time) and the conversions
//! between them and the domain types of `concur-core`. Nothing else lives here.
//!
//! Layout:
//! - [`pb`]: the generated messages, clients and servers.
//! - [`convert`]: `From`/`TryFrom` between wire and domain types.

pub mod convert;

/// Generated protobuf and gRPC code for package `concur.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("concur.v1");
}

/// Encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("concur_descriptor");
