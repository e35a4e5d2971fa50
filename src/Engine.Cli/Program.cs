// Entry point of the `engine` command.
return Engine.Cli.EngineProgram.Run(args);
