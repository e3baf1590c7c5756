//! `chorus`: the developer and operator command line of chorus.

mod args;
mod produce;
mod schemas;
mod tail;
mod topics;

use clap::Parser;

use args::{Cli, Command, SchemasCommand, TopicsCommand};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topics(TopicsCommand::Create(args)) => topics::create(&cli.global, &args).await,
        Command::Topics(TopicsCommand::List) => topics::list(&cli.global).await,
        Command::Schemas(SchemasCommand::Register(args)) => {
            schemas::register(&cli.global, &args).await
        }
        Command::Schemas(SchemasCommand::Check(args)) => schemas::check(&cli.global, &args).await,
        Command::Example(args) => produce::example(&args),
        Command::Produce(args) => produce::produce(&cli.global, &args).await,
        Command::Tail(args) => tail::tail(&cli.global, &args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
