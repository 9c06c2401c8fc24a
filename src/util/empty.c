/* Placeholder translation unit so an empty module still forms a library. */
int coffer__empty_tu;
