-- 0001_initial: upstream fractal-server 2.24's schema at alembic head d4027db95431.
-- revision: d4027db95431
-- Applied as one transaction by src/db/migrate.c.
CREATE TABLE public.accountingrecord (
    id integer NOT NULL,
    user_id integer NOT NULL,
    "timestamp" timestamp with time zone NOT NULL,
    num_tasks integer NOT NULL,
    num_new_images integer NOT NULL
);

CREATE SEQUENCE public.accountingrecord_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.accountingrecord_id_seq OWNED BY public.accountingrecord.id;

CREATE TABLE public.accountingrecordslurm (
    id integer NOT NULL,
    user_id integer NOT NULL,
    "timestamp" timestamp with time zone NOT NULL,
    slurm_job_ids integer[],
    fractal_job_id integer,
    resource_id integer
);

CREATE SEQUENCE public.accountingrecordslurm_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.accountingrecordslurm_id_seq OWNED BY public.accountingrecordslurm.id;

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE public.datasetv2 (
    id integer NOT NULL,
    name character varying NOT NULL,
    project_id integer NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    zarr_dir character varying NOT NULL,
    images jsonb DEFAULT '[]'::json NOT NULL,
    is_starred boolean DEFAULT false NOT NULL
);

CREATE SEQUENCE public.datasetv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.datasetv2_id_seq OWNED BY public.datasetv2.id;

CREATE TABLE public.historyimagecache (
    zarr_url character varying NOT NULL,
    dataset_id integer NOT NULL,
    workflowtask_id integer NOT NULL,
    latest_history_unit_id integer NOT NULL
);

CREATE TABLE public.historyrun (
    id integer NOT NULL,
    dataset_id integer NOT NULL,
    workflowtask_id integer,
    workflowtask_dump jsonb NOT NULL,
    task_group_dump jsonb NOT NULL,
    timestamp_started timestamp with time zone NOT NULL,
    status character varying NOT NULL,
    num_available_images integer NOT NULL,
    job_id integer NOT NULL,
    task_id integer
);

CREATE SEQUENCE public.historyrun_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.historyrun_id_seq OWNED BY public.historyrun.id;

CREATE TABLE public.historyunit (
    id integer NOT NULL,
    history_run_id integer NOT NULL,
    logfile character varying DEFAULT '__LOGFILE_PLACEHOLDER__'::character varying NOT NULL,
    status character varying NOT NULL,
    zarr_urls character varying[],
    has_warnings boolean NOT NULL
);

CREATE SEQUENCE public.historyunit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.historyunit_id_seq OWNED BY public.historyunit.id;

CREATE TABLE public.jobv2 (
    id integer NOT NULL,
    project_id integer,
    workflow_id integer,
    dataset_id integer,
    user_email character varying NOT NULL,
    slurm_account character varying,
    dataset_dump jsonb NOT NULL,
    workflow_dump jsonb NOT NULL,
    project_dump jsonb NOT NULL,
    worker_init character varying,
    working_dir character varying,
    working_dir_user character varying,
    first_task_index integer NOT NULL,
    last_task_index integer NOT NULL,
    start_timestamp timestamp with time zone NOT NULL,
    end_timestamp timestamp with time zone,
    status character varying NOT NULL,
    log character varying,
    attribute_filters jsonb DEFAULT '{}'::json NOT NULL,
    type_filters jsonb DEFAULT '{}'::json NOT NULL,
    executor_error_log character varying,
    fractal_server_version character varying DEFAULT 'pre-2.19.0'::character varying NOT NULL
);

CREATE SEQUENCE public.jobv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.jobv2_id_seq OWNED BY public.jobv2.id;

CREATE TABLE public.linkusergroup (
    group_id integer NOT NULL,
    user_id integer NOT NULL,
    timestamp_created timestamp with time zone DEFAULT '2000-01-01 00:00:00+00'::timestamp with time zone NOT NULL
);

CREATE TABLE public.linkuserprojectv2 (
    project_id integer NOT NULL,
    user_id integer NOT NULL,
    is_owner boolean NOT NULL,
    is_verified boolean NOT NULL,
    permissions character varying NOT NULL,
    CONSTRAINT ck_linkuserprojectv2_owner_full_permissions CHECK ((NOT (is_owner AND ((permissions)::text <> 'rwx'::text)))),
    CONSTRAINT ck_linkuserprojectv2_owner_is_verified CHECK ((NOT (is_owner AND (NOT is_verified)))),
    CONSTRAINT ck_linkuserprojectv2_valid_permissions CHECK ((permissions IN ('r', 'rw', 'rwx')))
);

CREATE TABLE public.oauthaccount (
    id integer NOT NULL,
    user_id integer NOT NULL,
    oauth_name character varying NOT NULL,
    access_token character varying NOT NULL,
    expires_at integer,
    refresh_token character varying,
    account_id character varying NOT NULL,
    account_email character varying NOT NULL
);

CREATE SEQUENCE public.oauthaccount_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.oauthaccount_id_seq OWNED BY public.oauthaccount.id;

CREATE TABLE public.profile (
    id integer NOT NULL,
    resource_id integer NOT NULL,
    resource_type character varying NOT NULL,
    name character varying NOT NULL,
    username character varying,
    ssh_key_path character varying,
    jobs_remote_dir character varying,
    tasks_remote_dir character varying,
    pixi_cache_dir character varying
);

CREATE SEQUENCE public.profile_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.profile_id_seq OWNED BY public.profile.id;

CREATE TABLE public.projectv2 (
    id integer NOT NULL,
    name character varying NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    resource_id integer NOT NULL,
    is_starred boolean DEFAULT false NOT NULL,
    description character varying
);

CREATE SEQUENCE public.projectv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.projectv2_id_seq OWNED BY public.projectv2.id;

CREATE TABLE public.resource (
    id integer NOT NULL,
    type character varying NOT NULL,
    name character varying NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    host character varying,
    jobs_local_dir character varying NOT NULL,
    jobs_runner_config jsonb DEFAULT '{}'::jsonb NOT NULL,
    jobs_slurm_python_worker character varying,
    jobs_poll_interval integer NOT NULL,
    tasks_local_dir character varying NOT NULL,
    tasks_python_config jsonb DEFAULT '{}'::jsonb NOT NULL,
    tasks_pixi_config jsonb DEFAULT '{}'::jsonb NOT NULL,
    prevent_new_submissions boolean DEFAULT false NOT NULL,
    CONSTRAINT ck_resource_correct_type CHECK ((type IN ('local', 'slurm_sudo', 'slurm_ssh'))),
    CONSTRAINT ck_resource_jobs_slurm_python_worker_set CHECK ((((type)::text = 'local'::text) OR (jobs_slurm_python_worker IS NOT NULL)))
);

CREATE SEQUENCE public.resource_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.resource_id_seq OWNED BY public.resource.id;

CREATE TABLE public.taskgroupactivityv2 (
    id integer NOT NULL,
    user_id integer NOT NULL,
    taskgroupv2_id integer,
    timestamp_started timestamp with time zone NOT NULL,
    pkg_name character varying NOT NULL,
    version character varying NOT NULL,
    status character varying NOT NULL,
    action character varying NOT NULL,
    log character varying,
    timestamp_ended timestamp with time zone,
    fractal_server_version character varying DEFAULT 'pre-2.19.0'::character varying NOT NULL
);

CREATE SEQUENCE public.taskgroupactivityv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.taskgroupactivityv2_id_seq OWNED BY public.taskgroupactivityv2.id;

CREATE TABLE public.taskgroupv2 (
    id integer NOT NULL,
    user_id integer NOT NULL,
    user_group_id integer,
    origin character varying NOT NULL,
    pkg_name character varying NOT NULL,
    version character varying NOT NULL,
    python_version character varying,
    path character varying,
    venv_path character varying,
    archive_path character varying,
    pip_extras character varying,
    pinned_package_versions_post jsonb DEFAULT '{}'::json,
    active boolean NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    env_info character varying,
    timestamp_last_used timestamp with time zone DEFAULT '2024-11-20 00:00:00+00'::timestamp with time zone NOT NULL,
    pixi_version character varying,
    pinned_package_versions_pre jsonb DEFAULT '{}'::jsonb,
    resource_id integer NOT NULL
);

CREATE SEQUENCE public.taskgroupv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.taskgroupv2_id_seq OWNED BY public.taskgroupv2.id;

CREATE TABLE public.taskv2 (
    id integer NOT NULL,
    name character varying NOT NULL,
    type character varying NOT NULL,
    command_non_parallel character varying,
    command_parallel character varying,
    meta_non_parallel json DEFAULT '{}'::json NOT NULL,
    meta_parallel json DEFAULT '{}'::json NOT NULL,
    version character varying NOT NULL,
    args_schema_non_parallel json,
    args_schema_parallel json,
    args_schema_version character varying,
    docs_info character varying,
    docs_link character varying,
    input_types jsonb,
    output_types jsonb,
    taskgroupv2_id integer NOT NULL,
    category character varying,
    modality character varying,
    authors character varying,
    tags jsonb DEFAULT '[]'::json NOT NULL,
    is_core boolean DEFAULT false NOT NULL
);

CREATE SEQUENCE public.taskv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.taskv2_id_seq OWNED BY public.taskv2.id;

CREATE TABLE public.user_oauth (
    id integer NOT NULL,
    email character varying NOT NULL,
    hashed_password character varying NOT NULL,
    is_active boolean NOT NULL,
    is_superuser boolean NOT NULL,
    is_verified boolean NOT NULL,
    profile_id integer,
    slurm_accounts character varying[] DEFAULT '{}'::character varying[],
    project_dirs character varying[] NOT NULL,
    is_guest boolean DEFAULT false NOT NULL
);

CREATE SEQUENCE public.user_oauth_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.user_oauth_id_seq OWNED BY public.user_oauth.id;

CREATE TABLE public.usergroup (
    id integer NOT NULL,
    name character varying NOT NULL,
    timestamp_created timestamp with time zone NOT NULL
);

CREATE SEQUENCE public.usergroup_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.usergroup_id_seq OWNED BY public.usergroup.id;

CREATE TABLE public.workflowtaskv2 (
    id integer NOT NULL,
    workflow_id integer NOT NULL,
    "order" integer,
    meta_parallel json,
    meta_non_parallel json,
    args_parallel jsonb,
    args_non_parallel jsonb,
    task_type character varying NOT NULL,
    task_id integer NOT NULL,
    type_filters jsonb DEFAULT '{}'::json NOT NULL,
    alias character varying,
    description character varying
);

CREATE SEQUENCE public.workflowtaskv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.workflowtaskv2_id_seq OWNED BY public.workflowtaskv2.id;

CREATE TABLE public.workflowtemplate (
    id integer NOT NULL,
    user_id integer NOT NULL,
    name character varying NOT NULL,
    version integer NOT NULL,
    fractal_server_version character varying NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    timestamp_last_used timestamp with time zone NOT NULL,
    user_group_id integer,
    description character varying,
    data json NOT NULL
);

CREATE SEQUENCE public.workflowtemplate_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.workflowtemplate_id_seq OWNED BY public.workflowtemplate.id;

CREATE TABLE public.workflowv2 (
    id integer NOT NULL,
    name character varying NOT NULL,
    project_id integer NOT NULL,
    timestamp_created timestamp with time zone NOT NULL,
    description character varying,
    template_id integer,
    is_starred boolean DEFAULT false NOT NULL
);

CREATE SEQUENCE public.workflowv2_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.workflowv2_id_seq OWNED BY public.workflowv2.id;

ALTER TABLE ONLY public.accountingrecord ALTER COLUMN id SET DEFAULT nextval('public.accountingrecord_id_seq'::regclass);

ALTER TABLE ONLY public.accountingrecordslurm ALTER COLUMN id SET DEFAULT nextval('public.accountingrecordslurm_id_seq'::regclass);

ALTER TABLE ONLY public.datasetv2 ALTER COLUMN id SET DEFAULT nextval('public.datasetv2_id_seq'::regclass);

ALTER TABLE ONLY public.historyrun ALTER COLUMN id SET DEFAULT nextval('public.historyrun_id_seq'::regclass);

ALTER TABLE ONLY public.historyunit ALTER COLUMN id SET DEFAULT nextval('public.historyunit_id_seq'::regclass);

ALTER TABLE ONLY public.jobv2 ALTER COLUMN id SET DEFAULT nextval('public.jobv2_id_seq'::regclass);

ALTER TABLE ONLY public.oauthaccount ALTER COLUMN id SET DEFAULT nextval('public.oauthaccount_id_seq'::regclass);

ALTER TABLE ONLY public.profile ALTER COLUMN id SET DEFAULT nextval('public.profile_id_seq'::regclass);

ALTER TABLE ONLY public.projectv2 ALTER COLUMN id SET DEFAULT nextval('public.projectv2_id_seq'::regclass);

ALTER TABLE ONLY public.resource ALTER COLUMN id SET DEFAULT nextval('public.resource_id_seq'::regclass);

ALTER TABLE ONLY public.taskgroupactivityv2 ALTER COLUMN id SET DEFAULT nextval('public.taskgroupactivityv2_id_seq'::regclass);

ALTER TABLE ONLY public.taskgroupv2 ALTER COLUMN id SET DEFAULT nextval('public.taskgroupv2_id_seq'::regclass);

ALTER TABLE ONLY public.taskv2 ALTER COLUMN id SET DEFAULT nextval('public.taskv2_id_seq'::regclass);

ALTER TABLE ONLY public.user_oauth ALTER COLUMN id SET DEFAULT nextval('public.user_oauth_id_seq'::regclass);

ALTER TABLE ONLY public.usergroup ALTER COLUMN id SET DEFAULT nextval('public.usergroup_id_seq'::regclass);

ALTER TABLE ONLY public.workflowtaskv2 ALTER COLUMN id SET DEFAULT nextval('public.workflowtaskv2_id_seq'::regclass);

ALTER TABLE ONLY public.workflowtemplate ALTER COLUMN id SET DEFAULT nextval('public.workflowtemplate_id_seq'::regclass);

ALTER TABLE ONLY public.workflowv2 ALTER COLUMN id SET DEFAULT nextval('public.workflowv2_id_seq'::regclass);

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY public.accountingrecord
    ADD CONSTRAINT pk_accountingrecord PRIMARY KEY (id);

ALTER TABLE ONLY public.accountingrecordslurm
    ADD CONSTRAINT pk_accountingrecordslurm PRIMARY KEY (id);

ALTER TABLE ONLY public.datasetv2
    ADD CONSTRAINT pk_datasetv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.historyimagecache
    ADD CONSTRAINT pk_historyimagecache PRIMARY KEY (zarr_url, dataset_id, workflowtask_id);

ALTER TABLE ONLY public.historyrun
    ADD CONSTRAINT pk_historyrun PRIMARY KEY (id);

ALTER TABLE ONLY public.historyunit
    ADD CONSTRAINT pk_historyunit PRIMARY KEY (id);

ALTER TABLE ONLY public.jobv2
    ADD CONSTRAINT pk_jobv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.linkusergroup
    ADD CONSTRAINT pk_linkusergroup PRIMARY KEY (group_id, user_id);

ALTER TABLE ONLY public.linkuserprojectv2
    ADD CONSTRAINT pk_linkuserprojectv2 PRIMARY KEY (project_id, user_id);

ALTER TABLE ONLY public.oauthaccount
    ADD CONSTRAINT pk_oauthaccount PRIMARY KEY (id);

ALTER TABLE ONLY public.profile
    ADD CONSTRAINT pk_profile PRIMARY KEY (id);

ALTER TABLE ONLY public.projectv2
    ADD CONSTRAINT pk_projectv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.resource
    ADD CONSTRAINT pk_resource PRIMARY KEY (id);

ALTER TABLE ONLY public.taskgroupactivityv2
    ADD CONSTRAINT pk_taskgroupactivityv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.taskgroupv2
    ADD CONSTRAINT pk_taskgroupv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.taskv2
    ADD CONSTRAINT pk_taskv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.user_oauth
    ADD CONSTRAINT pk_user_oauth PRIMARY KEY (id);

ALTER TABLE ONLY public.usergroup
    ADD CONSTRAINT pk_usergroup PRIMARY KEY (id);

ALTER TABLE ONLY public.workflowtaskv2
    ADD CONSTRAINT pk_workflowtaskv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.workflowtemplate
    ADD CONSTRAINT pk_workflowtemplate PRIMARY KEY (id);

ALTER TABLE ONLY public.workflowv2
    ADD CONSTRAINT pk_workflowv2 PRIMARY KEY (id);

ALTER TABLE ONLY public.profile
    ADD CONSTRAINT uq_profile_name UNIQUE (name);

ALTER TABLE ONLY public.resource
    ADD CONSTRAINT uq_resource_name UNIQUE (name);

ALTER TABLE ONLY public.usergroup
    ADD CONSTRAINT uq_usergroup_name UNIQUE (name);

CREATE INDEX ix_historyimagecache_dataset_id ON public.historyimagecache USING btree (dataset_id);

CREATE INDEX ix_historyimagecache_latest_history_unit_id ON public.historyimagecache USING btree (latest_history_unit_id);

CREATE INDEX ix_historyimagecache_workflowtask_id ON public.historyimagecache USING btree (workflowtask_id);

CREATE INDEX ix_historyunit_history_run_id ON public.historyunit USING btree (history_run_id);

CREATE UNIQUE INDEX ix_jobv2_one_submitted_job_per_dataset ON public.jobv2 USING btree (dataset_id) WHERE ((status)::text = 'submitted'::text);

CREATE UNIQUE INDEX ix_linkuserprojectv2_one_owner_per_project ON public.linkuserprojectv2 USING btree (project_id) WHERE (is_owner IS TRUE);

CREATE INDEX ix_oauthaccount_account_id ON public.oauthaccount USING btree (account_id);

CREATE INDEX ix_oauthaccount_oauth_name ON public.oauthaccount USING btree (oauth_name);

CREATE UNIQUE INDEX ix_taskgroupactivityv2_collect_unique_constraint ON public.taskgroupactivityv2 USING btree (taskgroupv2_id) WHERE ((action)::text = 'collect'::text);

CREATE UNIQUE INDEX ix_taskgroupv2_path_unique_constraint ON public.taskgroupv2 USING btree (path, resource_id);

CREATE UNIQUE INDEX ix_taskv2_one_task_name_per_task_group ON public.taskv2 USING btree (name, taskgroupv2_id);

CREATE UNIQUE INDEX ix_user_oauth_email ON public.user_oauth USING btree (email);

CREATE UNIQUE INDEX ix_workflowtemplate_user_name_version_unique_constraint ON public.workflowtemplate USING btree (user_id, name, version);

ALTER TABLE ONLY public.accountingrecord
    ADD CONSTRAINT fk_accountingrecord_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.accountingrecordslurm
    ADD CONSTRAINT fk_accountingrecordslurm_fractal_job_id_jobv2 FOREIGN KEY (fractal_job_id) REFERENCES public.jobv2(id);

ALTER TABLE ONLY public.accountingrecordslurm
    ADD CONSTRAINT fk_accountingrecordslurm_resource_id_resource FOREIGN KEY (resource_id) REFERENCES public.resource(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.accountingrecordslurm
    ADD CONSTRAINT fk_accountingrecordslurm_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.datasetv2
    ADD CONSTRAINT fk_datasetv2_project_id_projectv2 FOREIGN KEY (project_id) REFERENCES public.projectv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.historyimagecache
    ADD CONSTRAINT fk_historyimagecache_dataset_id_datasetv2 FOREIGN KEY (dataset_id) REFERENCES public.datasetv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.historyimagecache
    ADD CONSTRAINT fk_historyimagecache_latest_history_unit_id_historyunit FOREIGN KEY (latest_history_unit_id) REFERENCES public.historyunit(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.historyimagecache
    ADD CONSTRAINT fk_historyimagecache_workflowtask_id_workflowtaskv2 FOREIGN KEY (workflowtask_id) REFERENCES public.workflowtaskv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.historyrun
    ADD CONSTRAINT fk_historyrun_dataset_id_datasetv2 FOREIGN KEY (dataset_id) REFERENCES public.datasetv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.historyrun
    ADD CONSTRAINT fk_historyrun_job_id_jobv2 FOREIGN KEY (job_id) REFERENCES public.jobv2(id);

ALTER TABLE ONLY public.historyrun
    ADD CONSTRAINT fk_historyrun_task_id_taskv2 FOREIGN KEY (task_id) REFERENCES public.taskv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.historyrun
    ADD CONSTRAINT fk_historyrun_workflowtask_id_workflowtaskv2 FOREIGN KEY (workflowtask_id) REFERENCES public.workflowtaskv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.historyunit
    ADD CONSTRAINT fk_historyunit_history_run_id_historyrun FOREIGN KEY (history_run_id) REFERENCES public.historyrun(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.jobv2
    ADD CONSTRAINT fk_jobv2_dataset_id_datasetv2 FOREIGN KEY (dataset_id) REFERENCES public.datasetv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.jobv2
    ADD CONSTRAINT fk_jobv2_project_id_projectv2 FOREIGN KEY (project_id) REFERENCES public.projectv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.jobv2
    ADD CONSTRAINT fk_jobv2_workflow_id_workflowv2 FOREIGN KEY (workflow_id) REFERENCES public.workflowv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.linkusergroup
    ADD CONSTRAINT fk_linkusergroup_group_id_usergroup FOREIGN KEY (group_id) REFERENCES public.usergroup(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.linkusergroup
    ADD CONSTRAINT fk_linkusergroup_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.linkuserprojectv2
    ADD CONSTRAINT fk_linkuserprojectv2_project_id_projectv2 FOREIGN KEY (project_id) REFERENCES public.projectv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.linkuserprojectv2
    ADD CONSTRAINT fk_linkuserprojectv2_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.oauthaccount
    ADD CONSTRAINT fk_oauthaccount_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.profile
    ADD CONSTRAINT fk_profile_resource_id_resource FOREIGN KEY (resource_id) REFERENCES public.resource(id) ON DELETE RESTRICT;

ALTER TABLE ONLY public.projectv2
    ADD CONSTRAINT fk_projectv2_resource_id_resource FOREIGN KEY (resource_id) REFERENCES public.resource(id) ON DELETE RESTRICT;

ALTER TABLE ONLY public.taskgroupactivityv2
    ADD CONSTRAINT fk_taskgroupactivityv2_taskgroupv2_id_taskgroupv2 FOREIGN KEY (taskgroupv2_id) REFERENCES public.taskgroupv2(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.taskgroupactivityv2
    ADD CONSTRAINT fk_taskgroupactivityv2_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.taskgroupv2
    ADD CONSTRAINT fk_taskgroupv2_resource_id_resource FOREIGN KEY (resource_id) REFERENCES public.resource(id) ON DELETE RESTRICT;

ALTER TABLE ONLY public.taskgroupv2
    ADD CONSTRAINT fk_taskgroupv2_user_group_id_usergroup FOREIGN KEY (user_group_id) REFERENCES public.usergroup(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.taskgroupv2
    ADD CONSTRAINT fk_taskgroupv2_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.taskv2
    ADD CONSTRAINT fk_taskv2_taskgroupv2_id_taskgroupv2 FOREIGN KEY (taskgroupv2_id) REFERENCES public.taskgroupv2(id);

ALTER TABLE ONLY public.user_oauth
    ADD CONSTRAINT fk_user_oauth_profile_id_profile FOREIGN KEY (profile_id) REFERENCES public.profile(id) ON DELETE RESTRICT;

ALTER TABLE ONLY public.workflowtaskv2
    ADD CONSTRAINT fk_workflowtaskv2_task_id_taskv2 FOREIGN KEY (task_id) REFERENCES public.taskv2(id);

ALTER TABLE ONLY public.workflowtaskv2
    ADD CONSTRAINT fk_workflowtaskv2_workflow_id_workflowv2 FOREIGN KEY (workflow_id) REFERENCES public.workflowv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.workflowtemplate
    ADD CONSTRAINT fk_workflowtemplate_user_group_id_usergroup FOREIGN KEY (user_group_id) REFERENCES public.usergroup(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.workflowtemplate
    ADD CONSTRAINT fk_workflowtemplate_user_id_user_oauth FOREIGN KEY (user_id) REFERENCES public.user_oauth(id);

ALTER TABLE ONLY public.workflowv2
    ADD CONSTRAINT fk_workflowv2_project_id_projectv2 FOREIGN KEY (project_id) REFERENCES public.projectv2(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.workflowv2
    ADD CONSTRAINT fk_workflowv2_template_id_workflowtemplate FOREIGN KEY (template_id) REFERENCES public.workflowtemplate(id) ON DELETE SET NULL;


INSERT INTO public.alembic_version (version_num) VALUES ('d4027db95431');
