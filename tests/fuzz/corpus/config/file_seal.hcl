backend "file" { path = "/var/lib/coffer" }
seal "awskms" { region = "us-east-1" kms_key_id = "k" }
