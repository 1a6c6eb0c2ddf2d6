/* agent_static: a statically linked program (the agent cannot be
 * preloaded into it); burns a little CPU. */
static volatile double sink;

int main(void)
{
    double x = 1.0;
    for (long i = 0; i < 20000000; i++)
        x = x * 1.0000001 + 0.5 / (x + 1.0);
    sink = x;
    return 0;
}
