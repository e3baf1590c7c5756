//! `chorus`: the developer and operator command line of chorus.

mod acls;
mod args;
mod bench;
mod chaos;
mod dlq;
mod gateway;
mod load;
mod produce;
mod read_model;
mod render;
mod saga_steps;
mod sagas;
mod schemas;
mod tail;
mod topic_reader;
mod topics;
mod trace;

use clap::Parser;

use args::{
    AclsCommand, BenchCommand, ChaosCommand, Cli, Command, DlqCommand, OrderCommand, SagasCommand,
    SchemasCommand, StockCommand, TopicsCommand,
};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topics(TopicsCommand::Create(args)) => topics::create(&cli.global, &args).await,
        Command::Topics(TopicsCommand::List) => topics::list(&cli.global).await,
        Command::Topics(TopicsCommand::Check(args)) => topics::check(&cli.global, &args).await,
        Command::Acls(AclsCommand::Apply(args)) => acls::apply(&cli.global, &args).await,
        Command::Schemas(SchemasCommand::Register(args)) => {
            schemas::register(&cli.global, &args).await
        }
        Command::Schemas(SchemasCommand::Check(args)) => schemas::check(&cli.global, &args).await,
        Command::Example(args) => produce::example(&args),
        Command::Produce(args) => produce::produce(&cli.global, &args).await,
        Command::Tail(args) => tail::tail(&cli.global, &args).await,
        Command::Dlq(DlqCommand::List(args)) => dlq::list(&cli.global, &args).await,
        Command::Dlq(DlqCommand::Show(args)) => dlq::show(&cli.global, &args).await,
        Command::Dlq(DlqCommand::Redrive(args)) => dlq::redrive(&cli.global, &args).await,
        Command::Trace(args) => trace::trace(&cli.global, &args).await,
        Command::Sagas(SagasCommand::Stuck(args)) => sagas::stuck(&cli.global, &args).await,
        Command::Token(args) => gateway::token(&args),
        Command::Order(OrderCommand::Place(args)) => gateway::place_order(&cli.global, &args).await,
        Command::Order(OrderCommand::Status(args)) => {
            gateway::order_status(&cli.global, &args).await
        }
        Command::Order(OrderCommand::List(args)) => gateway::list_orders(&cli.global, &args).await,
        Command::Order(OrderCommand::Cancel(args)) => {
            gateway::cancel_order(&cli.global, &args).await
        }
        Command::Stock(StockCommand::Set(args)) => gateway::set_stock(&cli.global, &args).await,
        Command::Stock(StockCommand::Get(args)) => gateway::get_stock(&cli.global, &args).await,
        Command::Load(args) => load::run(&cli.global, &args).await,
        Command::Bench(BenchCommand::Kafka(args)) => bench::kafka::run(&cli.global, &args).await,
        Command::Bench(BenchCommand::Pg(args)) => bench::pg::run(&args).await,
        Command::Bench(BenchCommand::Report(args)) => bench::report::run(&args),
        Command::Chaos(ChaosCommand::Poison(args)) => {
            chaos::poison::poison(&cli.global, &args).await
        }
        Command::Chaos(ChaosCommand::Check(args)) => chaos::check::check(&cli.global, &args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The gateway's error JSON is already on stderr, alone.
        Err(e) if e.is::<gateway::Refused>() => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
