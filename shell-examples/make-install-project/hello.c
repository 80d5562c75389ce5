#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	const char *who = getenv("GREETING");
	printf("hello, %s\n", who ? who : "world");
	return 0;
}
