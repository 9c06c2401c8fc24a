/*
 * main.c - entry point: `coffer server ...` runs the server, anything else is
 * a client command. Only wires modules together.
 */
int server_main(int argc, char **argv);
int cli_main(int argc, char **argv);

#include <string.h>

#include "util/scrub.h"

int main(int argc, char **argv)
{
	/* referenced so the scrubbing free/realloc (util/scrub.c) is linked in */
	(void)scrub_active();
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return server_main(argc - 1, argv + 1);
	return cli_main(argc, argv);
}
