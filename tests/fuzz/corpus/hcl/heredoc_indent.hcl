p = <<-EOT
    line one
      line two
    EOT
