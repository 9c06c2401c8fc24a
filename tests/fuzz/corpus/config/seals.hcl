storage "inmem" {}
seal "a" { disabled = true }
seal "b" {}
experiments = ["x"]
