storage "inmem" {}
telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
}
listener "tcp" {
 tls_disable = "1"
 telemetry { unauthenticated_metrics_access = true }
}
