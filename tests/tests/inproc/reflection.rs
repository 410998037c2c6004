//! Server reflection answers in both versions gRPC tools speak: v1 (grpcurl) and v1alpha
//! (Python's grpc_reflection client, evans, older grpcurl).

use crate::harness::Served;
use concur_coordinator::CoordinatorConfig;
use tonic::transport::Channel;

const CONCUR_SERVICES: [&str; 2] = ["concur.v1.JobService", "concur.v1.WorkerService"];

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_reflection_versions_list_concurs_services() {
    let served = Served::start(CoordinatorConfig::default()).await;

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as V1Alpha;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = V1Alpha::new(channel(&served.url).await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let Some(AlphaResponse::ListServicesResponse(list)) = responses
        .message()
        .await
        .expect("an answer")
        .and_then(|r| r.message_response)
    else {
        panic!("v1alpha: no service list");
    };
    let alpha: Vec<String> = list.service.into_iter().map(|s| s.name).collect();

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(V1Request::ListServices(String::new())),
    };
    let mut responses = V1::new(channel(&served.url).await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("v1 reflection is served")
        .into_inner();
    let Some(V1Response::ListServicesResponse(list)) = responses
        .message()
        .await
        .expect("an answer")
        .and_then(|r| r.message_response)
    else {
        panic!("v1: no service list");
    };
    let v1: Vec<String> = list.service.into_iter().map(|s| s.name).collect();

    for service in CONCUR_SERVICES {
        assert!(alpha.iter().any(|s| s == service), "v1alpha: {alpha:?}");
        assert!(v1.iter().any(|s| s == service), "v1: {v1:?}");
    }
    served.stop().await;
}
