//! A real HTTP upstream for the gateway, recording what reaches it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use serde_json::json;

/// What a [`TestUpstream`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The headers as a CGI or WSGI server puts them in its environment:
    /// `HTTP_` and the name upper-cased with `-` folded into `_`, so that
    /// `x_keybroker_instance` and `X-Keybroker-Instance` land on one key.
    pub fn cgi_environ(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(n, v)| {
                let key = format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_"));
                (key, v.clone())
            })
            .collect()
    }

    /// The values of one CGI environment key, in the order received.
    pub fn cgi(&self, key: &str) -> Vec<String> {
        self.cgi_environ()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }
}

/// What a product answers on paths containing `/product-headers`: a cookie,
/// its server's name, and CORS headers of its own, the most permissive kind.
pub const PRODUCT_HEADERS: [(&str, &str); 8] = [
    ("set-cookie", "product_session=s3cr3t; Path=/; HttpOnly"),
    ("set-cookie", "product_pref=dark; Path=/"),
    ("server", "product-httpd/1.0"),
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("access-control-allow-methods", "GET, POST, DELETE"),
    ("access-control-allow-headers", "*"),
    ("access-control-expose-headers", "x-product-secret"),
];

/// A real HTTP upstream for the gateway, recording every request it gets.
/// Paths containing `/slow` answer after two seconds; paths containing
/// `/product-headers` answer with [`PRODUCT_HEADERS`] too.
pub struct TestUpstream {
    pub base: String,
    pub received: Arc<std::sync::Mutex<Vec<Recorded>>>,
    handle: ServerHandle,
}

impl TestUpstream {
    pub fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let received: Arc<std::sync::Mutex<Vec<Recorded>>> = Arc::default();
        let log = received.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let log = log.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let log = log.clone();
                async move {
                    let recorded = Recorded {
                        method: req.method().to_string(),
                        path: req.path().to_owned(),
                        query: req.query_string().to_owned(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    log.lock().unwrap().push(recorded);
                    if req.path().contains("/slow") {
                        actix_web::rt::time::sleep(Duration::from_secs(2)).await;
                    }
                    let mut response = HttpResponse::Ok();
                    response.insert_header(("x-upstream", "test"));
                    if req.path().contains("/product-headers") {
                        for (name, value) in PRODUCT_HEADERS {
                            response.append_header((name, value));
                        }
                    }
                    response
                        .json(json!({"upstream": true, "path": req.path(), "bytes": body.len()}))
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .expect("listen upstream")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestUpstream {
            base,
            received,
            handle,
        }
    }

    pub fn hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn last(&self) -> Recorded {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream received nothing")
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
