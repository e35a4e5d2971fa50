namespace Engine.Cli;

public static class EngineProgram
{
    public static int Run(string[] args) { Console.WriteLine("engine"); return 0; }
}
