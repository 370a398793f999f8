//! `confcast operator grant|revoke|list`: the operator role is given on the
//! server's own command line, by whoever runs the server, and never through
//! the API. It works while the server runs (SQLite allows the second writer).

use std::process::ExitCode;

use confcast_store::{Store, StoreError};

use crate::config::{DataFolder, OperatorCommand};

pub fn run(command: OperatorCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: OperatorCommand) -> Result<String, String> {
    let (store, username, grant) = match &command {
        OperatorCommand::Grant { username, data } => (open(data).await?, Some(username.as_str()), true),
        OperatorCommand::Revoke { username, data } => (open(data).await?, Some(username.as_str()), false),
        OperatorCommand::List { data } => (open(data).await?, None, false),
    };
    let result = match username {
        Some(username) => match store.set_operator(username, grant).await {
            Ok(true) if grant => Ok(format!("{username} is now an operator")),
            Ok(true) => Ok(format!("{username} is no longer an operator")),
            Ok(false) if grant => Ok(format!("{username} was already an operator")),
            Ok(false) => Ok(format!("{username} was not an operator")),
            Err(StoreError::NotFound(_)) => Err(format!("there is no user named {username}")),
            Err(error) => Err(error.to_string()),
        },
        None => match store.operators().await {
            Ok(list) if list.is_empty() => Ok("no operators (grant the role with: confcast operator grant USERNAME)".to_owned()),
            Ok(list) => Ok(list.iter().map(|u| format!("{}\t{}", u.username, u.display_name)).collect::<Vec<_>>().join("\n")),
            Err(error) => Err(error.to_string()),
        },
    };
    store.close().await;
    result
}

/// The server's database; never created here (a typo in `--data` must not
/// make an empty one).
async fn open(data: &DataFolder) -> Result<Store, String> {
    let path = data.data.join("confcast.sqlite");
    if !path.is_file() {
        return Err(format!("no database at {} (give the server's --data folder; it is made by the first `confcast serve`)", path.display()));
    }
    Store::open(&path).await.map_err(|e| format!("cannot open {}: {e}", path.display()))
}
