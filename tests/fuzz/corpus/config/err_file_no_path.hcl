storage "file" {}
