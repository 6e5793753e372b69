-- 0001_initial: upstream fractal-server 2.24's schema at alembic head
-- d4027db95431, in SQLite's closest types. Applied as one transaction by
-- src/db/migrate.c.
-- revision: d4027db95431
--
-- Type mapping (the database interface reads these back in the same
-- canonical form as PostgreSQL's):
--   integer -> INTEGER; serial ids -> INTEGER PRIMARY KEY AUTOINCREMENT, so
--   that ids are never reused, as with PostgreSQL sequences;
--   varchar -> TEXT; boolean -> BOOLEAN (0/1);
--   json/jsonb and arrays (varchar[], integer[]) -> TEXT holding JSON;
--   timestamptz -> TEXT, ISO 8601 "YYYY-mm-ddTHH:MM:SS.ffffff+00:00".
-- JSON columns use TEXT affinity on purpose: a JSON type name would get
-- NUMERIC affinity and turn the text '1.0' into a number.

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL CONSTRAINT alembic_version_pkc PRIMARY KEY
);

CREATE TABLE resource (
    id INTEGER NOT NULL CONSTRAINT pk_resource PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    name TEXT NOT NULL CONSTRAINT uq_resource_name UNIQUE,
    timestamp_created TEXT NOT NULL,
    host TEXT,
    jobs_local_dir TEXT NOT NULL,
    jobs_runner_config TEXT DEFAULT '{}' NOT NULL,
    jobs_slurm_python_worker TEXT,
    jobs_poll_interval INTEGER NOT NULL,
    tasks_local_dir TEXT NOT NULL,
    tasks_python_config TEXT DEFAULT '{}' NOT NULL,
    tasks_pixi_config TEXT DEFAULT '{}' NOT NULL,
    prevent_new_submissions BOOLEAN DEFAULT 0 NOT NULL,
    CONSTRAINT ck_resource_correct_type CHECK (type IN ('local', 'slurm_sudo', 'slurm_ssh')),
    CONSTRAINT ck_resource_jobs_slurm_python_worker_set CHECK (type = 'local' OR jobs_slurm_python_worker IS NOT NULL)
);

CREATE TABLE profile (
    id INTEGER NOT NULL CONSTRAINT pk_profile PRIMARY KEY AUTOINCREMENT,
    resource_id INTEGER NOT NULL CONSTRAINT fk_profile_resource_id_resource REFERENCES resource (id) ON DELETE RESTRICT,
    resource_type TEXT NOT NULL,
    name TEXT NOT NULL CONSTRAINT uq_profile_name UNIQUE,
    username TEXT,
    ssh_key_path TEXT,
    jobs_remote_dir TEXT,
    tasks_remote_dir TEXT,
    pixi_cache_dir TEXT
);

CREATE TABLE user_oauth (
    id INTEGER NOT NULL CONSTRAINT pk_user_oauth PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    hashed_password TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    is_superuser BOOLEAN NOT NULL,
    is_verified BOOLEAN NOT NULL,
    profile_id INTEGER CONSTRAINT fk_user_oauth_profile_id_profile REFERENCES profile (id) ON DELETE RESTRICT,
    slurm_accounts TEXT DEFAULT '[]',
    project_dirs TEXT NOT NULL,
    is_guest BOOLEAN DEFAULT 0 NOT NULL
);
CREATE UNIQUE INDEX ix_user_oauth_email ON user_oauth (email);

CREATE TABLE oauthaccount (
    id INTEGER NOT NULL CONSTRAINT pk_oauthaccount PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_oauthaccount_user_id_user_oauth REFERENCES user_oauth (id),
    oauth_name TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_at INTEGER,
    refresh_token TEXT,
    account_id TEXT NOT NULL,
    account_email TEXT NOT NULL
);
CREATE INDEX ix_oauthaccount_account_id ON oauthaccount (account_id);
CREATE INDEX ix_oauthaccount_oauth_name ON oauthaccount (oauth_name);

CREATE TABLE usergroup (
    id INTEGER NOT NULL CONSTRAINT pk_usergroup PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CONSTRAINT uq_usergroup_name UNIQUE,
    timestamp_created TEXT NOT NULL
);

CREATE TABLE linkusergroup (
    group_id INTEGER NOT NULL CONSTRAINT fk_linkusergroup_group_id_usergroup REFERENCES usergroup (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL CONSTRAINT fk_linkusergroup_user_id_user_oauth REFERENCES user_oauth (id) ON DELETE CASCADE,
    timestamp_created TEXT DEFAULT '2000-01-01T00:00:00.000000+00:00' NOT NULL,
    CONSTRAINT pk_linkusergroup PRIMARY KEY (group_id, user_id)
);

CREATE TABLE projectv2 (
    id INTEGER NOT NULL CONSTRAINT pk_projectv2 PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    timestamp_created TEXT NOT NULL,
    resource_id INTEGER NOT NULL CONSTRAINT fk_projectv2_resource_id_resource REFERENCES resource (id) ON DELETE RESTRICT,
    is_starred BOOLEAN DEFAULT 0 NOT NULL,
    description TEXT
);

CREATE TABLE linkuserprojectv2 (
    project_id INTEGER NOT NULL CONSTRAINT fk_linkuserprojectv2_project_id_projectv2 REFERENCES projectv2 (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL CONSTRAINT fk_linkuserprojectv2_user_id_user_oauth REFERENCES user_oauth (id),
    is_owner BOOLEAN NOT NULL,
    is_verified BOOLEAN NOT NULL,
    permissions TEXT NOT NULL,
    CONSTRAINT pk_linkuserprojectv2 PRIMARY KEY (project_id, user_id),
    CONSTRAINT ck_linkuserprojectv2_owner_full_permissions CHECK (NOT (is_owner AND permissions <> 'rwx')),
    CONSTRAINT ck_linkuserprojectv2_owner_is_verified CHECK (NOT (is_owner AND NOT is_verified)),
    CONSTRAINT ck_linkuserprojectv2_valid_permissions CHECK (permissions IN ('r', 'rw', 'rwx'))
);
CREATE UNIQUE INDEX ix_linkuserprojectv2_one_owner_per_project ON linkuserprojectv2 (project_id) WHERE is_owner IS 1;

CREATE TABLE datasetv2 (
    id INTEGER NOT NULL CONSTRAINT pk_datasetv2 PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    project_id INTEGER NOT NULL CONSTRAINT fk_datasetv2_project_id_projectv2 REFERENCES projectv2 (id) ON DELETE CASCADE,
    timestamp_created TEXT NOT NULL,
    zarr_dir TEXT NOT NULL,
    images TEXT DEFAULT '[]' NOT NULL,
    is_starred BOOLEAN DEFAULT 0 NOT NULL
);

CREATE TABLE taskgroupv2 (
    id INTEGER NOT NULL CONSTRAINT pk_taskgroupv2 PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_taskgroupv2_user_id_user_oauth REFERENCES user_oauth (id),
    user_group_id INTEGER CONSTRAINT fk_taskgroupv2_user_group_id_usergroup REFERENCES usergroup (id) ON DELETE SET NULL,
    origin TEXT NOT NULL,
    pkg_name TEXT NOT NULL,
    version TEXT NOT NULL,
    python_version TEXT,
    path TEXT,
    venv_path TEXT,
    archive_path TEXT,
    pip_extras TEXT,
    pinned_package_versions_post TEXT DEFAULT '{}',
    active BOOLEAN NOT NULL,
    timestamp_created TEXT NOT NULL,
    env_info TEXT,
    timestamp_last_used TEXT DEFAULT '2024-11-20T00:00:00.000000+00:00' NOT NULL,
    pixi_version TEXT,
    pinned_package_versions_pre TEXT DEFAULT '{}',
    resource_id INTEGER NOT NULL CONSTRAINT fk_taskgroupv2_resource_id_resource REFERENCES resource (id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX ix_taskgroupv2_path_unique_constraint ON taskgroupv2 (path, resource_id);

CREATE TABLE taskgroupactivityv2 (
    id INTEGER NOT NULL CONSTRAINT pk_taskgroupactivityv2 PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_taskgroupactivityv2_user_id_user_oauth REFERENCES user_oauth (id),
    taskgroupv2_id INTEGER CONSTRAINT fk_taskgroupactivityv2_taskgroupv2_id_taskgroupv2 REFERENCES taskgroupv2 (id) ON DELETE SET NULL,
    timestamp_started TEXT NOT NULL,
    pkg_name TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    action TEXT NOT NULL,
    log TEXT,
    timestamp_ended TEXT,
    fractal_server_version TEXT DEFAULT 'pre-2.19.0' NOT NULL
);
CREATE UNIQUE INDEX ix_taskgroupactivityv2_collect_unique_constraint ON taskgroupactivityv2 (taskgroupv2_id) WHERE action = 'collect';

CREATE TABLE taskv2 (
    id INTEGER NOT NULL CONSTRAINT pk_taskv2 PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    command_non_parallel TEXT,
    command_parallel TEXT,
    meta_non_parallel TEXT DEFAULT '{}' NOT NULL,
    meta_parallel TEXT DEFAULT '{}' NOT NULL,
    version TEXT NOT NULL,
    args_schema_non_parallel TEXT,
    args_schema_parallel TEXT,
    args_schema_version TEXT,
    docs_info TEXT,
    docs_link TEXT,
    input_types TEXT,
    output_types TEXT,
    taskgroupv2_id INTEGER NOT NULL CONSTRAINT fk_taskv2_taskgroupv2_id_taskgroupv2 REFERENCES taskgroupv2 (id),
    category TEXT,
    modality TEXT,
    authors TEXT,
    tags TEXT DEFAULT '[]' NOT NULL,
    is_core BOOLEAN DEFAULT 0 NOT NULL
);
CREATE UNIQUE INDEX ix_taskv2_one_task_name_per_task_group ON taskv2 (name, taskgroupv2_id);

CREATE TABLE workflowtemplate (
    id INTEGER NOT NULL CONSTRAINT pk_workflowtemplate PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_workflowtemplate_user_id_user_oauth REFERENCES user_oauth (id),
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    fractal_server_version TEXT NOT NULL,
    timestamp_created TEXT NOT NULL,
    timestamp_last_used TEXT NOT NULL,
    user_group_id INTEGER CONSTRAINT fk_workflowtemplate_user_group_id_usergroup REFERENCES usergroup (id) ON DELETE SET NULL,
    description TEXT,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX ix_workflowtemplate_user_name_version_unique_constraint ON workflowtemplate (user_id, name, version);

CREATE TABLE workflowv2 (
    id INTEGER NOT NULL CONSTRAINT pk_workflowv2 PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    project_id INTEGER NOT NULL CONSTRAINT fk_workflowv2_project_id_projectv2 REFERENCES projectv2 (id) ON DELETE CASCADE,
    timestamp_created TEXT NOT NULL,
    description TEXT,
    template_id INTEGER CONSTRAINT fk_workflowv2_template_id_workflowtemplate REFERENCES workflowtemplate (id) ON DELETE SET NULL,
    is_starred BOOLEAN DEFAULT 0 NOT NULL
);

CREATE TABLE workflowtaskv2 (
    id INTEGER NOT NULL CONSTRAINT pk_workflowtaskv2 PRIMARY KEY AUTOINCREMENT,
    workflow_id INTEGER NOT NULL CONSTRAINT fk_workflowtaskv2_workflow_id_workflowv2 REFERENCES workflowv2 (id) ON DELETE CASCADE,
    "order" INTEGER,
    meta_parallel TEXT,
    meta_non_parallel TEXT,
    args_parallel TEXT,
    args_non_parallel TEXT,
    task_type TEXT NOT NULL,
    task_id INTEGER NOT NULL CONSTRAINT fk_workflowtaskv2_task_id_taskv2 REFERENCES taskv2 (id),
    type_filters TEXT DEFAULT '{}' NOT NULL,
    alias TEXT,
    description TEXT
);

CREATE TABLE jobv2 (
    id INTEGER NOT NULL CONSTRAINT pk_jobv2 PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER CONSTRAINT fk_jobv2_project_id_projectv2 REFERENCES projectv2 (id) ON DELETE SET NULL,
    workflow_id INTEGER CONSTRAINT fk_jobv2_workflow_id_workflowv2 REFERENCES workflowv2 (id) ON DELETE SET NULL,
    dataset_id INTEGER CONSTRAINT fk_jobv2_dataset_id_datasetv2 REFERENCES datasetv2 (id) ON DELETE SET NULL,
    user_email TEXT NOT NULL,
    slurm_account TEXT,
    dataset_dump TEXT NOT NULL,
    workflow_dump TEXT NOT NULL,
    project_dump TEXT NOT NULL,
    worker_init TEXT,
    working_dir TEXT,
    working_dir_user TEXT,
    first_task_index INTEGER NOT NULL,
    last_task_index INTEGER NOT NULL,
    start_timestamp TEXT NOT NULL,
    end_timestamp TEXT,
    status TEXT NOT NULL,
    log TEXT,
    attribute_filters TEXT DEFAULT '{}' NOT NULL,
    type_filters TEXT DEFAULT '{}' NOT NULL,
    executor_error_log TEXT,
    fractal_server_version TEXT DEFAULT 'pre-2.19.0' NOT NULL
);
CREATE UNIQUE INDEX ix_jobv2_one_submitted_job_per_dataset ON jobv2 (dataset_id) WHERE status = 'submitted';

CREATE TABLE historyrun (
    id INTEGER NOT NULL CONSTRAINT pk_historyrun PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL CONSTRAINT fk_historyrun_dataset_id_datasetv2 REFERENCES datasetv2 (id) ON DELETE CASCADE,
    workflowtask_id INTEGER CONSTRAINT fk_historyrun_workflowtask_id_workflowtaskv2 REFERENCES workflowtaskv2 (id) ON DELETE SET NULL,
    workflowtask_dump TEXT NOT NULL,
    task_group_dump TEXT NOT NULL,
    timestamp_started TEXT NOT NULL,
    status TEXT NOT NULL,
    num_available_images INTEGER NOT NULL,
    job_id INTEGER NOT NULL CONSTRAINT fk_historyrun_job_id_jobv2 REFERENCES jobv2 (id),
    task_id INTEGER CONSTRAINT fk_historyrun_task_id_taskv2 REFERENCES taskv2 (id) ON DELETE SET NULL
);

CREATE TABLE historyunit (
    id INTEGER NOT NULL CONSTRAINT pk_historyunit PRIMARY KEY AUTOINCREMENT,
    history_run_id INTEGER NOT NULL CONSTRAINT fk_historyunit_history_run_id_historyrun REFERENCES historyrun (id) ON DELETE CASCADE,
    logfile TEXT DEFAULT '__LOGFILE_PLACEHOLDER__' NOT NULL,
    status TEXT NOT NULL,
    zarr_urls TEXT,
    has_warnings BOOLEAN NOT NULL
);
CREATE INDEX ix_historyunit_history_run_id ON historyunit (history_run_id);

CREATE TABLE historyimagecache (
    zarr_url TEXT NOT NULL,
    dataset_id INTEGER NOT NULL CONSTRAINT fk_historyimagecache_dataset_id_datasetv2 REFERENCES datasetv2 (id) ON DELETE CASCADE,
    workflowtask_id INTEGER NOT NULL CONSTRAINT fk_historyimagecache_workflowtask_id_workflowtaskv2 REFERENCES workflowtaskv2 (id) ON DELETE CASCADE,
    latest_history_unit_id INTEGER NOT NULL CONSTRAINT fk_historyimagecache_latest_history_unit_id_historyunit REFERENCES historyunit (id) ON DELETE CASCADE,
    CONSTRAINT pk_historyimagecache PRIMARY KEY (zarr_url, dataset_id, workflowtask_id)
);
CREATE INDEX ix_historyimagecache_dataset_id ON historyimagecache (dataset_id);
CREATE INDEX ix_historyimagecache_latest_history_unit_id ON historyimagecache (latest_history_unit_id);
CREATE INDEX ix_historyimagecache_workflowtask_id ON historyimagecache (workflowtask_id);

CREATE TABLE accountingrecord (
    id INTEGER NOT NULL CONSTRAINT pk_accountingrecord PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_accountingrecord_user_id_user_oauth REFERENCES user_oauth (id),
    "timestamp" TEXT NOT NULL,
    num_tasks INTEGER NOT NULL,
    num_new_images INTEGER NOT NULL
);

CREATE TABLE accountingrecordslurm (
    id INTEGER NOT NULL CONSTRAINT pk_accountingrecordslurm PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL CONSTRAINT fk_accountingrecordslurm_user_id_user_oauth REFERENCES user_oauth (id),
    "timestamp" TEXT NOT NULL,
    slurm_job_ids TEXT,
    fractal_job_id INTEGER CONSTRAINT fk_accountingrecordslurm_fractal_job_id_jobv2 REFERENCES jobv2 (id),
    resource_id INTEGER CONSTRAINT fk_accountingrecordslurm_resource_id_resource REFERENCES resource (id) ON DELETE SET NULL
);

INSERT INTO alembic_version (version_num) VALUES ('d4027db95431');
