a "b" "c" { d { e = [] } }
"quoted" = { k = { j = 1 } }
