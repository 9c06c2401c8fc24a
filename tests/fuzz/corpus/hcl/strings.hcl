s = "q\" b\\ n\n t\t \u00e9 \U0001F600"
i = "${var.x}"
t = "{{identity.entity.id}}"
