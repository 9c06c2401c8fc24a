# Example production configuration for deploy/coffer.service.
storage "file" {
  path = "/var/lib/coffer/data"
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/coffer/tls/cert.pem"
  tls_key_file  = "/etc/coffer/tls/key.pem"
}

api_addr  = "https://coffer.example.com:8200"
log_level = "info"
